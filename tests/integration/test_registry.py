"""Confluent framing against a real schema registry: Apicurio Registry 3.0, started here.

The registry is fetched once with Maven into the project's cache folder and run from its
runnable bundle (in-memory storage, bound to 127.0.0.1 on a free port) for this module only.
Apicurio 3.1+ needs Java 21; 3.0.9 runs on the Java 17 the project requires. Maven Central
holds the 3.0.9 bundle but not its parent POM, without which Maven refuses to download
anything; a one-line stand-in parent is installed into a private local repository (never the
user's ``~/.m2``) so Maven can fetch the bundle itself.
"""

from __future__ import annotations

import shutil
import subprocess
import tarfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from codec_samples import INQUIRY_ID, sample_store, samples

from exchange._codec import Codec
from exchange._errors import LocalBrokerError, UnknownSchemaError
from exchange._kafka_jars import cache_root, find_java, find_mvn
from exchange._local_broker_os import free_ports
from exchange._registry import ConfluentCodec, SchemaRegistryClient
from exchange._wire import INQUIRY_OUTCOME, INQUIRY_REQUEST

pytestmark = [
    pytest.mark.integration,
    # The first test also pays for the module's registry: on a fresh machine a 115 MB Maven
    # download, then up to START_TIMEOUT for Quarkus to start; more than the suite's 300 s.
    pytest.mark.timeout(900),
]

APICURIO_VERSION = "3.0.9"
START_TIMEOUT = 240.0  # a Quarkus start on two busy cores, plus the first download
_DEPENDENCY_PLUGIN = "org.apache.maven.plugins:maven-dependency-plugin:3.8.1"
_INSTALL_PLUGIN = "org.apache.maven.plugins:maven-install-plugin:3.1.2"
_STAND_IN_PARENT = f"""<project xmlns="http://maven.apache.org/POM/4.0.0">
  <modelVersion>4.0.0</modelVersion>
  <groupId>io.apicurio</groupId><artifactId>apicurio-registry</artifactId>
  <version>{APICURIO_VERSION}</version><packaging>pom</packaging>
</project>
"""


def _maven(*args: str) -> None:
    command = [find_mvn(), "-B", "-q", *args]
    done = subprocess.run(command, check=False, capture_output=True, text=True)
    if done.returncode != 0:
        errors = [line for line in (done.stdout + done.stderr).splitlines() if "ERROR" in line]
        pytest.fail(f"Maven could not fetch Apicurio Registry: {errors[:3]}", pytrace=False)


def _runner_jar() -> Path:
    """The bundle's runner jar, fetched and unpacked into the cache once."""
    home = cache_root() / f"apicurio-registry-{APICURIO_VERSION}"
    jar = home / f"apicurio-registry-app-{APICURIO_VERSION}-runner.jar"
    if (home / ".complete").is_file():
        return jar
    home.mkdir(parents=True, exist_ok=True)
    repo = f"-Dmaven.repo.local={home / 'm2'}"
    (home / "parent.pom").write_text(_STAND_IN_PARENT)
    _maven(f"{_INSTALL_PLUGIN}:install-file", f"-Dfile={home / 'parent.pom'}",
           f"-DpomFile={home / 'parent.pom'}", repo)  # fmt: skip
    artifact = f"io.apicurio:apicurio-registry-app:{APICURIO_VERSION}:tar.gz:all"
    _maven(
        f"{_DEPENDENCY_PLUGIN}:copy", f"-Dartifact={artifact}", f"-DoutputDirectory={home}", repo
    )
    bundle = home / f"apicurio-registry-app-{APICURIO_VERSION}-all.tar.gz"
    with tarfile.open(bundle) as archive:
        archive.extractall(home, filter="data")
    bundle.unlink()
    shutil.rmtree(home / "m2")  # Maven's copy of the bundle: 100 MB not needed any more
    (home / ".complete").write_text(f"apicurio-registry {APICURIO_VERSION}\n")
    return jar


def _wait_ready(url: str, process: subprocess.Popen[bytes], log: Path) -> None:
    deadline = time.monotonic() + START_TIMEOUT
    while time.monotonic() < deadline:
        if process.poll() is not None:
            break
        try:
            if httpx.get(f"{url}/subjects", timeout=2.0).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.5)
    tail = "\n".join(log.read_text(errors="replace").splitlines()[-40:])
    pytest.fail(f"Apicurio Registry did not become ready at {url}\n{tail}", pytrace=False)


@pytest.fixture(scope="module")
def registry_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """Base URL of the Confluent-compatible API of a registry running for this module."""
    try:
        java, jar = find_java(), _runner_jar()
    except LocalBrokerError as exc:
        pytest.fail(exc.message, pytrace=False)
    workdir = tmp_path_factory.mktemp("apicurio")
    (port,) = free_ports(1)
    log = workdir / "registry.log"
    with log.open("wb") as out:
        process = subprocess.Popen(
            [java, "-Xms64m", "-Xmx384m", "-XX:TieredStopAtLevel=1",
             "-Dquarkus.http.host=127.0.0.1", f"-Dquarkus.http.port={port}", "-jar", str(jar)],
            cwd=workdir, stdout=out, stderr=subprocess.STDOUT,
        )  # fmt: skip
    url = f"http://127.0.0.1:{port}/apis/ccompat/v7"
    try:
        _wait_ready(url, process, log)
        yield url
    finally:
        process.terminate()
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def _codec(url: str, **options: Any) -> ConfluentCodec:
    return ConfluentCodec(Codec(sample_store()), SchemaRegistryClient(url), **options)


async def test_every_envelope_round_trips_through_the_registry(registry_url: str) -> None:
    """Each envelope encodes as 00 + id + body and decodes with a client that starts cold."""
    writer, reader = _codec(registry_url), _codec(registry_url)
    async with writer.registry, reader.registry:
        for model in samples(writer.codec).values():
            data = await writer.encode_model(model)
            assert data[0] == 0
            assert data[5:] == writer.codec.encode_model(model)[10:]
            assert await reader.decode_model(data, type(model)) == model


async def test_framed_id_is_the_registry_id_of_the_subject(registry_url: str) -> None:
    """The 4 bytes after 00 are the id the registry lists for the record's subject."""
    codec = _codec(registry_url)
    async with codec.registry, httpx.AsyncClient() as http:
        data = await codec.encode_model(samples(codec.codec)["inquiry-outcome"])
        answer = await http.get(f"{registry_url}/subjects/{INQUIRY_OUTCOME}/versions/latest")
    latest = answer.json()
    assert int.from_bytes(data[1:5], "big") == latest["id"]


async def test_lookup_only_mode_uses_the_registered_id(registry_url: str) -> None:
    """With auto_register off, an already registered schema is found, not registered again."""
    model = samples(Codec(sample_store()))["inquiry-request"]
    first, second = _codec(registry_url), _codec(registry_url, auto_register=False)
    async with first.registry, second.registry:
        assert await second.encode_model(model) == await first.encode_model(model)


async def test_unknown_schema_id_is_unknown_schema(registry_url: str) -> None:
    """An id the registry never issued raises UnknownSchemaError (the server's 404)."""
    codec = _codec(registry_url)
    async with codec.registry:
        with pytest.raises(UnknownSchemaError):
            await codec.decode(b"\x00\x00\x0f\x42\x3f\x00", reader=INQUIRY_REQUEST)


async def test_older_writer_registered_separately_resolves_to_todays_reader(
    registry_url: str,
) -> None:
    """A record written with an older schema (fetched by id) reads with the current one."""
    codec = _codec(registry_url)
    older = dict(codec.codec.store.get(INQUIRY_REQUEST).definition)
    older["fields"] = [f for f in older["fields"] if f["name"] != "reply_to"]
    writer = codec.codec.store.add(older, current=False)
    request = samples(codec.codec)["inquiry-request"]
    value = {k: v for k, v in request.to_avro().items() if k != "reply_to"}
    async with codec.registry:
        data = await codec.encode(writer, value)
        fresh = _codec(registry_url)
        async with fresh.registry:
            decoded = await fresh.decode(data, reader=INQUIRY_REQUEST)
    assert decoded["reply_to"] is None
    assert decoded["inquiry_id"] == INQUIRY_ID
