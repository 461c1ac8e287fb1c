"""The local broker's Java side: find ``java`` and ``mvn``, fetch the pinned Kafka jars.

The Kafka release is pinned in ``docker/kafka-local/pom.xml`` (property ``kafka.version``),
the one place that names it. Maven copies the release's runtime jars, plus the logging jars
the Apache tarball adds by hand, into a per-version cache folder shared by every checkout::

    ${XDG_CACHE_HOME:-~/.cache}/inquiry-exchange/kafka-<version>/libs/

A ``.complete`` marker is written last, so an interrupted download is never mistaken for a
full one; later runs find the marker and need neither Maven nor the network.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
import xml.etree.ElementTree as ET
from dataclasses import dataclass
from pathlib import Path

from exchange._errors import LocalBrokerError

_MAVEN_NS = {"m": "http://maven.apache.org/POM/4.0.0"}
_DEPENDENCY_PLUGIN = "org.apache.maven.plugins:maven-dependency-plugin:3.8.1"
_MARKER = ".complete"


@dataclass(frozen=True)
class KafkaDist:
    """Where the pinned Kafka release's files are: the Maven project and the jar cache."""

    project_dir: Path
    version: str
    libs_dir: Path

    @property
    def pom(self) -> Path:
        """The Maven project that pins the release."""
        return self.project_dir / "pom.xml"

    @property
    def log4j_config(self) -> Path:
        """The project's log4j2 configuration for the broker."""
        return self.project_dir / "log4j2.xml"

    @property
    def classpath(self) -> str:
        """The ``-cp`` argument: every jar in the cache folder."""
        return str(self.libs_dir / "*")

    @property
    def is_fetched(self) -> bool:
        """Whether a complete copy of the jars is in the cache."""
        return (self.libs_dir / _MARKER).is_file()


def project_dir() -> Path:
    """The ``docker/kafka-local`` folder of the source checkout this package runs from."""
    found = Path(__file__).resolve().parent.parent / "docker" / "kafka-local"
    if not (found / "pom.xml").is_file():
        raise LocalBrokerError(
            "the local broker needs a source checkout of the project "
            f"({found} not found); set EXCHANGE_KAFKA_BOOTSTRAP to use an existing cluster"
        )
    return found


def cache_root() -> Path:
    """The user's cache folder for the project (honours ``XDG_CACHE_HOME``)."""
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "inquiry-exchange"


def pinned_version(pom: Path) -> str:
    """The ``kafka.version`` property of the pinning POM."""
    try:
        root = ET.parse(pom).getroot()  # noqa: S314 - the project's own file, not input
    except (OSError, ET.ParseError) as exc:
        raise LocalBrokerError(f"cannot read {pom}: {exc}") from exc
    node = root.find("m:properties/m:kafka.version", _MAVEN_NS)
    if node is None or not (node.text or "").strip():
        raise LocalBrokerError(f"{pom} does not set the kafka.version property")
    return (node.text or "").strip()


def kafka_dist() -> KafkaDist:
    """The pinned release: its Maven project and its jar cache folder (maybe not fetched)."""
    folder = project_dir()
    version = pinned_version(folder / "pom.xml")
    return KafkaDist(folder, version, cache_root() / f"kafka-{version}" / "libs")


def find_java() -> str:
    """The ``java`` to run the broker with: ``$JAVA_HOME/bin/java``, else from ``PATH``."""
    java_home = os.environ.get("JAVA_HOME")
    if java_home and (Path(java_home) / "bin" / "java").is_file():
        return str(Path(java_home) / "bin" / "java")
    found = shutil.which("java")
    if found is None:
        raise LocalBrokerError(
            "java not found (JAVA_HOME unset and no java on PATH); install a Java 17+ runtime, "
            "e.g. `apt-get install openjdk-17-jre-headless`"
        )
    return found


def find_mvn() -> str:
    """The ``mvn`` used to fetch the jars once."""
    found = shutil.which("mvn")
    if found is None:
        raise LocalBrokerError(
            "mvn not found on PATH and the Kafka jars are not cached yet; install Maven, "
            "e.g. `apt-get install maven`, then retry"
        )
    return found


def ensure_jars(dist: KafkaDist | None = None) -> KafkaDist:
    """Return the pinned release with its jars in the cache, running Maven once if needed."""
    dist = dist or kafka_dist()
    if dist.is_fetched:
        return dist
    mvn = find_mvn()
    find_java()  # Maven needs it too; say so plainly rather than through Maven's error.
    dist.libs_dir.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix="libs.partial-", dir=dist.libs_dir.parent))
    try:
        _copy_dependencies(mvn, dist.pom, staging)
        (staging / _MARKER).write_text(f"kafka {dist.version}\n")
        _publish(staging, dist.libs_dir)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return dist


def _copy_dependencies(mvn: str, pom: Path, into: Path) -> None:
    command = [
        mvn,
        "-B",
        "-q",
        "-f",
        str(pom),
        f"{_DEPENDENCY_PLUGIN}:copy-dependencies",
        "-DincludeScope=runtime",
        f"-Dkafka.libs.dir={into}",
    ]
    done = subprocess.run(command, capture_output=True, text=True, check=False)  # noqa: S603
    if done.returncode != 0:
        lines = [ln for ln in (done.stdout + done.stderr).splitlines() if "ERROR" in ln]
        detail = lines[0].strip() if lines else f"exit code {done.returncode}"
        raise LocalBrokerError(
            f"Maven could not fetch the Kafka jars ({detail}); check access to Maven Central "
            "(or the mirror in ~/.m2/settings.xml) and retry"
        )


def _publish(staging: Path, libs_dir: Path) -> None:
    # A rename is atomic: a concurrent fetch either wins or finds the folder complete.
    try:
        staging.rename(libs_dir)
    except OSError:
        if not (libs_dir / _MARKER).is_file():
            shutil.rmtree(libs_dir, ignore_errors=True)
            staging.rename(libs_dir)
