"""The live catalog: validated snapshots of the catalog files on the ``<prefix>.catalog`` topic.

``exchange catalog publish`` validates the catalog folder exactly as ``exchange catalog check``
does and writes one **snapshot** record; every stream worker reads the topic at start and
follows it, so a reviewed catalog change reaches the running workers without a restart
(``docs/catalog.md``, "The live catalog").

Record (format 1) on ``<prefix>.catalog`` (one partition, compacted: the latest snapshot is
what the topic keeps)::

    key      b"catalog" (ASCII): one key, so compaction keeps only the newest snapshot
    headers  exchange-type: catalog
    value    UTF-8 JSON object
             {"format": 1,
              "version": "<64 lower-case hex digits>",
              "published_at": "2026-11-29T15:04:05.123000+00:00",
              "files": {"catalog/agencies.yaml": "<text>",
                        "catalog/services.yaml": "<text>",
                        "catalog/policies.yaml": "<text>",
                        "schemas/services/<code>.v<version>/request-1.avsc": "<text>", ...}}

``files`` holds the three catalog files and every ``.avsc`` file in the schema folder of each
service the catalog declares, by their paths relative to a root holding ``catalog/`` and
``schemas/``. ``version`` is the SHA-256 of ``files`` as canonical JSON (keys sorted, no
spaces, UTF-8, non-ASCII kept), so the same files always give the same version, whoever
publishes them and when. The envelope schemas (``schemas/envelope``) are not part of it: they
belong to the bus's release, and each worker keeps its own.

Loading a snapshot writes its files into a temporary folder, next to copies of the local
envelope schemas, and runs the very loaders used on the files (:func:`load_catalog`,
:meth:`SchemaStore.from_directory`): one code path validates both, and a snapshot gives the
same :class:`Catalog` and store as the files it was made from. The pure part (format, version)
needs no broker; the feed and the publisher at the bottom are the thin Kafka part.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import re
import shutil
import tempfile
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from types import MappingProxyType
from typing import Any, Final, Literal

from exchange._catalog import CATALOG_FILES, load_catalog
from exchange._catalog_model import Catalog, SchemaRevision, Service
from exchange._errors import BrokerError, CatalogError, SchemaError
from exchange._kafka import kafka_options
from exchange._schema_store import SchemaStore
from exchange._service_schemas import service_schema_dir
from exchange._settings import ExchangeSettings
from exchange._topic_reader import assign_all, group_free_consumer
from exchange._wire import HEADER_TYPE

__all__ = [
    "CATALOG_KEY",
    "CatalogFeed",
    "CatalogSnapshot",
    "LiveCatalog",
    "decode_snapshot",
    "encode_snapshot",
    "load_files",
    "load_snapshot",
    "publish_snapshot",
    "read_snapshot",
    "snapshot_version",
]

CATALOG_KEY: Final = b"catalog"
SNAPSHOT_FORMAT: Final = 1
#: Largest snapshot record written or read; the topic allows as much (CATALOG_CONFIG).
MAX_SNAPSHOT_BYTES: Final = 16 * 1024 * 1024
_CATALOG_DIR, _SCHEMAS_DIR = "catalog", "schemas"
_SERVICES = f"{_SCHEMAS_DIR}/services/"
# The only names a snapshot may hold: no absolute paths, no "..", nothing outside the layout.
_NAME = r"[A-Za-z0-9_-][A-Za-z0-9._-]*"
_FILE = re.compile(
    rf"{_CATALOG_DIR}/(agencies|services|policies)\.yaml|{_SERVICES}{_NAME}/{_NAME}\.avsc"
)


# --- the record (pure) ------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class CatalogSnapshot:
    """One published catalog: its files by relative path, their version, when published."""

    files: Mapping[str, str]
    version: str
    published_at: datetime

    @classmethod
    def of(cls, files: Mapping[str, str], *, published_at: datetime) -> CatalogSnapshot:
        """A snapshot of ``files``, with the version computed from them."""
        frozen = MappingProxyType(dict(sorted(files.items())))
        return cls(frozen, snapshot_version(frozen), published_at)

    @property
    def short_version(self) -> str:
        """The first 12 hex digits, as logs and messages show the version."""
        return self.version[:12]


def snapshot_version(files: Mapping[str, str]) -> str:
    """SHA-256 (hex) of ``files`` as canonical JSON: the same files give the same version."""
    text = json.dumps(dict(files), sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def encode_snapshot(snapshot: CatalogSnapshot) -> bytes:
    """The record value: UTF-8 JSON (format 1, module docstring)."""
    value = {
        "format": SNAPSHOT_FORMAT,
        "version": snapshot.version,
        "published_at": snapshot.published_at.isoformat(),
        "files": dict(snapshot.files),
    }
    return json.dumps(value, ensure_ascii=False, sort_keys=True).encode("utf-8")


def decode_snapshot(value: bytes | None) -> CatalogSnapshot:
    """Read a record value; :class:`CatalogError` if it is not a sound format-1 snapshot."""
    if value is None:
        raise _refused("a tombstone (no value) is not a snapshot")
    try:
        data = json.loads(value.decode("utf-8"))
    except (UnicodeDecodeError, ValueError) as exc:
        raise _refused(f"not UTF-8 JSON: {exc}") from exc
    if not isinstance(data, dict) or data.get("format") != SNAPSHOT_FORMAT:
        raise _refused(f"not a format-{SNAPSHOT_FORMAT} snapshot object")
    files, version = data.get("files"), data.get("version")
    if not isinstance(files, dict) or not all(
        isinstance(k, str) and isinstance(v, str) for k, v in files.items()
    ):
        raise _refused("'files' must map paths to texts")
    problems = [f"{name}: not a catalog or service schema file" for name in files]
    problems = [p for p, name in zip(problems, files, strict=True) if not _FILE.fullmatch(name)]
    if problems:
        raise CatalogError("the catalog snapshot names files it may not", problems=problems)
    if version != snapshot_version(files):
        raise _refused("its version is not the SHA-256 of its files (altered or truncated)")
    try:
        published_at = datetime.fromisoformat(str(data.get("published_at")))
    except ValueError as exc:
        raise _refused(f"published_at: {exc}") from exc
    return CatalogSnapshot.of(files, published_at=published_at)


def _refused(problem: str) -> CatalogError:
    return CatalogError(f"not a catalog snapshot: {problem}", problems=[f"snapshot: {problem}"])


# --- files and snapshots ----------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class LiveCatalog:
    """A validated catalog with its schema store, ready for the stream workers."""

    catalog: Catalog
    store: SchemaStore
    version: str
    origin: Literal["files", "topic"]
    #: When the snapshot was published (None for a catalog read from files).
    published_at: datetime | None = None


def read_snapshot(
    path: Path, schemas_path: Path, *, now: datetime | None = None
) -> CatalogSnapshot:
    """Validate the catalog folder (:class:`CatalogError` with every problem, as ``catalog
    check`` prints them) and take a snapshot of its files."""
    catalog = load_catalog(path, schemas_path)
    files = _catalog_files(path, schemas_path, catalog)
    return CatalogSnapshot.of(files, published_at=now or datetime.now(UTC))


def load_files(path: Path, schemas_path: Path) -> LiveCatalog:
    """The catalog and every schema from the files, versioned as a snapshot of them would be."""
    catalog = load_catalog(path, schemas_path)
    store = SchemaStore.from_directory(schemas_path)
    version = snapshot_version(_catalog_files(path, schemas_path, catalog))
    return LiveCatalog(catalog, store, version, "files")


def load_snapshot(snapshot: CatalogSnapshot, schemas_path: Path) -> LiveCatalog:
    """Validate a snapshot with the files' loaders; the envelope schemas come from the local
    ``schemas_path``. :class:`CatalogError` (problems named by snapshot paths) if invalid."""
    with tempfile.TemporaryDirectory(prefix="exchange-catalog-") as tmp:
        root = Path(tmp)
        for name, text in snapshot.files.items():
            (root / name).parent.mkdir(parents=True, exist_ok=True)
            (root / name).write_text(text, encoding="utf-8")
        _copy_local_schemas(schemas_path, root / _SCHEMAS_DIR)
        try:
            catalog = load_catalog(root / _CATALOG_DIR, root / _SCHEMAS_DIR)
            store = SchemaStore.from_directory(root / _SCHEMAS_DIR)
        except CatalogError as exc:
            problems = [problem.replace(f"{root}/", "") for problem in exc.problems]
            message = f"catalog snapshot {snapshot.short_version} has {len(problems)} problem(s)"
            raise CatalogError(message, problems=problems) from exc
        except SchemaError as exc:
            problem = exc.message.replace(f"{root}/", "")
            message = f"catalog snapshot {snapshot.short_version}: {problem}"
            raise CatalogError(message, problems=[problem]) from exc
    catalog = _relative_schema_paths(catalog, root)
    return LiveCatalog(catalog, store, snapshot.version, "topic", snapshot.published_at)


def _catalog_files(path: Path, schemas_path: Path, catalog: Catalog) -> dict[str, str]:
    files = {
        f"{_CATALOG_DIR}/{name}": (path / name).read_text(encoding="utf-8")
        for name in CATALOG_FILES.values()
    }
    for service in catalog.services:
        folder = service_schema_dir(schemas_path, service)
        for file in sorted(folder.glob("*.avsc")):
            files[f"{_SERVICES}{service.id}/{file.name}"] = file.read_text(encoding="utf-8")
    return files


def _copy_local_schemas(schemas_path: Path, target: Path) -> None:
    """Every local ``.avsc`` outside ``services/`` (the envelope), at the same relative path."""
    if not schemas_path.is_dir():
        raise CatalogError(
            f"schema folder {schemas_path} does not exist",
            problems=[f"{schemas_path}: folder is missing"],
        )
    for file in schemas_path.rglob("*.avsc"):
        relative = file.relative_to(schemas_path)
        if relative.parts[0] != "services":
            (target / relative).parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(file, target / relative)


def _relative_schema_paths(catalog: Catalog, root: Path) -> Catalog:
    """Name each schema revision by its path in the snapshot (``schemas/services/…``), not by
    the temporary folder that is gone: the same paths a catalog loaded from ``schemas`` has."""

    def moved(revisions: tuple[SchemaRevision, ...]) -> tuple[SchemaRevision, ...]:
        return tuple(r.model_copy(update={"path": r.path.relative_to(root)}) for r in revisions)

    def service(s: Service) -> Service:
        update = {"request_schemas": moved(s.request_schemas)}
        return s.model_copy(update=update | {"response_schemas": moved(s.response_schemas)})

    services = tuple(service(s) for s in catalog.services)
    return Catalog(agencies=catalog.agencies, services=services, policies=catalog.policies)


# --- Kafka: reading and publishing the topic ----------------------------------------------------


class CatalogFeed:
    """A group-free reader of the catalog topic: what it holds now, then what comes."""

    def __init__(self, settings: ExchangeSettings, topic: str) -> None:
        self._settings = settings
        self._topic = topic
        self._consumer: Any = None

    async def start(self) -> list[bytes | None]:
        """Every value the topic holds, oldest first (tombstones as None); :class:`BrokerError`
        if the topic does not exist or cannot be read within the request timeout."""
        from aiokafka.errors import KafkaError

        consumer = group_free_consumer(
            self._settings,
            max_partition_fetch_bytes=MAX_SNAPSHOT_BYTES + 65536,
            fetch_max_bytes=MAX_SNAPSHOT_BYTES + 65536,
        )
        self._consumer = consumer
        try:
            async with asyncio.timeout(self._settings.request_timeout):
                await consumer.start()
                assigned = await assign_all(
                    self._settings, consumer, [self._topic], from_beginning=True
                )
                ends = await consumer.end_offsets(assigned)
                values: list[bytes | None] = []
                while [tp for tp in assigned if await consumer.position(tp) < ends[tp]]:
                    values += await self.poll(0.5)
        except (KafkaError, TimeoutError) as exc:
            await self.stop()
            raise BrokerError(f"cannot read {self._topic}: {exc!r}") from exc
        except BaseException:
            await self.stop()
            raise
        return values

    async def poll(self, wait: float) -> list[bytes | None]:
        """Values that arrived, waiting up to ``wait`` seconds for one."""
        batches = await self._consumer.getmany(timeout_ms=int(wait * 1000))
        return [record.value for batch in batches.values() for record in batch]

    async def stop(self) -> None:
        """Close the consumer; idempotent."""
        consumer, self._consumer = self._consumer, None
        if consumer is not None:
            await consumer.stop()


def latest_version(values: list[bytes | None]) -> str | None:
    """The version of the newest readable snapshot among ``values``, or None."""
    for value in reversed(values):
        try:
            return decode_snapshot(value).version
        except CatalogError:
            continue
    return None


async def publish_snapshot(
    settings: ExchangeSettings, topic: str, snapshot: CatalogSnapshot
) -> bool:
    """Write ``snapshot`` unless it is already the topic's latest; True if written."""
    from aiokafka import AIOKafkaProducer
    from aiokafka.errors import KafkaError

    feed = CatalogFeed(settings, topic)
    try:
        values = await feed.start()
    except BrokerError as exc:
        hint = "; run `exchange topics apply` first" if "does not exist" in exc.message else ""
        raise BrokerError(exc.message + hint, retriable=exc.retriable) from exc
    finally:
        await feed.stop()
    if latest_version(values) == snapshot.version:
        return False
    producer = AIOKafkaProducer(
        **kafka_options(settings),
        acks="all",
        enable_idempotence=True,
        compression_type="gzip",  # YAML and Avro JSON shrink about tenfold
        max_request_size=MAX_SNAPSHOT_BYTES,
    )
    headers = [(HEADER_TYPE, b"catalog")]
    try:
        await producer.start()
        await producer.send_and_wait(topic, encode_snapshot(snapshot), CATALOG_KEY, headers=headers)
    except KafkaError as exc:
        raise BrokerError(f"cannot publish the catalog to {topic}: {exc!r}") from exc
    finally:
        await producer.stop()
    return True
