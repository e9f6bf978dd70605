"""Fetch Delta Lake's jars once from Maven Central into a local cache (``make jars``).

The artifact is derived the same way ``delta.pip_utils.configure_spark_with_delta_pip`` does it
(``io.delta:delta-spark_<spark major.minor>_2.13:<delta version>``), resolved with Maven, and then
pruned to what Delta needs *beyond* the jars pyspark already ships, so no second, older copy of
Jackson, Hadoop or Parquet lands on the classpath.  Later sessions read only the cache: no network.
"""

from __future__ import annotations

import argparse
import re
import shutil
import subprocess
import sys
import tempfile
from importlib import metadata
from pathlib import Path

POM = """<?xml version="1.0" encoding="UTF-8"?>
<project xmlns="http://maven.apache.org/POM/4.0.0">
  <modelVersion>4.0.0</modelVersion>
  <groupId>local.pricing</groupId>
  <artifactId>delta-jars</artifactId>
  <version>1</version>
  <packaging>pom</packaging>
  <dependencies>
    <dependency>
      <groupId>io.delta</groupId>
      <artifactId>{artifact}</artifactId>
      <version>{version}</version>
    </dependency>
  </dependencies>
</project>
"""

# RoaringBitmap 1.x (shipped by Spark) folded its "shims" jar in; the 0.9 shims would be a stray copy.
_ALSO_PROVIDED = {"shims"}


def artifact_name() -> tuple[str, str]:
    import pyspark

    spark_mm = ".".join(pyspark.__version__.split(".")[:2])
    return f"delta-spark_{spark_mm}_2.13", metadata.version("delta-spark")


def _base(jar: str) -> str:
    return re.sub(r"-\d[\w.\-]*\.jar$", "", jar)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("dest", type=Path)
    args = parser.parse_args()
    import pyspark

    artifact, version = artifact_name()
    marker = args.dest / f"{artifact}-{version}.jar"
    manifest = args.dest / "MANIFEST"
    if marker.exists() and manifest.exists():
        print(f"Delta jars already cached in {args.dest}")
        return 0
    spark_jars = Path(pyspark.__file__).parent / "jars"
    provided = {_base(p.name) for p in spark_jars.glob("*.jar")} | _ALSO_PROVIDED
    with tempfile.TemporaryDirectory() as tmp:
        pom = Path(tmp) / "pom.xml"
        pom.write_text(POM.format(artifact=artifact, version=version))
        out = Path(tmp) / "jars"
        cmd = ["mvn", "-q", "-B", "-f", str(pom), "dependency:copy-dependencies",
               "-DincludeScope=runtime", f"-DoutputDirectory={out}"]
        print(f"Resolving io.delta:{artifact}:{version} with Maven ...", flush=True)
        try:
            subprocess.run(cmd, check=True)
        except FileNotFoundError:
            print("error: Maven (mvn) is not installed; install it or copy the jars by hand", file=sys.stderr)
            return 2
        except subprocess.CalledProcessError as exc:
            print(f"error: Maven could not resolve io.delta:{artifact}:{version} (exit {exc.returncode}).\n"
                  "Check that this delta-spark version is published on Maven Central.", file=sys.stderr)
            return 2
        staged = Path(tmp) / "keep"
        staged.mkdir()
        for jar in sorted(out.glob("*.jar")):
            if _base(jar.name) not in provided:
                shutil.copy2(jar, staged / jar.name)
        if not (staged / marker.name).exists():
            print(f"error: {marker.name} missing from the resolved set", file=sys.stderr)
            return 2
        if args.dest.exists():
            shutil.rmtree(args.dest)
        args.dest.parent.mkdir(parents=True, exist_ok=True)
        shutil.move(str(staged), str(args.dest))
    kept = sorted(p.name for p in args.dest.glob("*.jar"))
    # Written last: the session factory trusts the cache only once this file exists.
    manifest.write_text(f"io.delta:{artifact}:{version}\n" + "".join(f"{k}\n" for k in kept))
    print(f"Cached {len(kept)} jars in {args.dest}: {', '.join(kept)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
