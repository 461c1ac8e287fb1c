"""Cross-language check: the Apache Avro Java library reads and writes our bytes exactly.

Java's ``BinaryMessageDecoder``/``BinaryMessageEncoder`` implement the single-object encoding
on their own. Fed the envelope schemas, the Java library must compute the fingerprints our
codec computes, decode every golden fixture, and re-encode it to the same bytes. Needs Java
17+ and Maven (the Avro jars are fetched once into the project's cache folder).
"""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest
from codec_samples import GOLDEN_DIR, ROOT

from exchange._errors import LocalBrokerError
from exchange._kafka_jars import cache_root, find_java, find_mvn
from exchange._schema_store import Schema

pytestmark = pytest.mark.integration

AVRO_JAVA_VERSION = "1.12.0"
_DEPENDENCY_PLUGIN = "org.apache.maven.plugins:maven-dependency-plugin:3.8.1"
_POM = f"""<project xmlns="http://maven.apache.org/POM/4.0.0">
  <modelVersion>4.0.0</modelVersion>
  <groupId>local</groupId><artifactId>avro-java-check</artifactId><version>1</version>
  <dependencies><dependency><groupId>org.apache.avro</groupId><artifactId>avro</artifactId>
    <version>{AVRO_JAVA_VERSION}</version></dependency></dependencies>
</project>
"""
# Args: golden folder, then schema files. Prints "<schema file> <fingerprint hex, wire order>"
# per schema, then "<fixture> <true|false>" per fixture: whether re-encoding gave its bytes.
_CHECK_JAVA = """
import java.nio.*; import java.nio.file.*; import java.util.*;
import org.apache.avro.*; import org.apache.avro.generic.*; import org.apache.avro.message.*;
public class Check {
  public static void main(String[] args) throws Exception {
    SchemaStore.Cache cache = new SchemaStore.Cache();
    Map<Long, Schema> byFingerprint = new HashMap<>();
    for (int i = 1; i < args.length; i++) {
      Schema schema = new Schema.Parser().parse(new java.io.File(args[i]));
      long fp = SchemaNormalization.parsingFingerprint64(schema);
      byte[] le = ByteBuffer.allocate(8).order(ByteOrder.LITTLE_ENDIAN).putLong(fp).array();
      System.out.println(args[i] + " " + HexFormat.of().formatHex(le));
      cache.addSchema(schema);
      byFingerprint.put(fp, schema);
    }
    try (var files = Files.list(Paths.get(args[0]))) {
      for (Path path : files.filter(p -> p.toString().endsWith(".hex")).sorted().toList()) {
        StringBuilder hex = new StringBuilder();
        for (String line : Files.readAllLines(path)) {
          if (!line.startsWith("#")) hex.append(line.trim());
        }
        byte[] data = HexFormat.of().parseHex(hex);
        long fp = ByteBuffer.wrap(data, 2, 8).order(ByteOrder.LITTLE_ENDIAN).getLong();
        Schema schema = byFingerprint.get(fp);
        GenericData model = GenericData.get();
        GenericRecord record = new BinaryMessageDecoder<GenericRecord>(model, schema, cache)
            .decode(data);
        byte[] again = new BinaryMessageEncoder<GenericRecord>(model, schema).encode(record)
            .array();
        System.out.println(path.getFileName() + " " + Arrays.equals(data, again));
      }
    }
  }
}
"""


def _avro_jars() -> Path:
    home = cache_root() / f"avro-java-{AVRO_JAVA_VERSION}"
    if (home / ".complete").is_file():
        return home
    home.mkdir(parents=True, exist_ok=True)
    (home / "pom.xml").write_text(_POM)
    command = [find_mvn(), "-B", "-q", "-f", str(home / "pom.xml"),
               f"{_DEPENDENCY_PLUGIN}:copy-dependencies", "-DincludeScope=runtime",
               f"-DoutputDirectory={home / 'libs'}"]  # fmt: skip
    done = subprocess.run(command, check=False, capture_output=True, text=True)
    if done.returncode != 0:
        pytest.fail(f"Maven could not fetch the Avro Java library: {done.stdout[-500:]}")
    (home / ".complete").write_text(f"avro {AVRO_JAVA_VERSION}\n")
    return home


def test_java_avro_agrees_on_fingerprints_and_golden_bytes(tmp_path: Path) -> None:
    """Java computes our fingerprint of every schema in the repo and re-encodes every fixture."""
    try:
        java, jars = find_java(), _avro_jars()
    except LocalBrokerError as exc:
        pytest.fail(exc.message, pytrace=False)
    (tmp_path / "Check.java").write_text(_CHECK_JAVA)
    schemas = [*sorted((ROOT / "schemas").rglob("*.avsc")), GOLDEN_DIR / "example-payload.avsc"]
    command = [java, "-cp", f"{jars / 'libs'}/*", str(tmp_path / "Check.java"), str(GOLDEN_DIR),
               *map(str, schemas)]  # fmt: skip
    done = subprocess.run(command, check=False, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    lines = dict(line.split(" ", 1) for line in done.stdout.splitlines())

    for path in schemas:
        assert lines[str(path)] == Schema.parse(path.read_text()).fingerprint.hex(), path
    fixtures = sorted(path.name for path in GOLDEN_DIR.glob("*.hex"))
    assert fixtures
    assert {name: lines.get(name) for name in fixtures} == dict.fromkeys(fixtures, "true")
