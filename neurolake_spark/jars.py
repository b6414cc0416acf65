"""JVM dependencies: Java check and Maven Central jars resolved once into a local cache.

The jars of a Maven coordinate (e.g. Delta) are resolved with the Ivy that ships inside
pyspark, from Maven Central, into ``jvm.jars_dir/<coordinate>/``. A ``.complete`` marker
written last makes later runs start offline. Transitive jars that Spark already ships
(Hadoop, Parquet, Jackson, log4j...) are left out, so Spark's own copy always wins.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

from neurolake_spark.errors import EnvironmentSetupError

MIN_JAVA = 17
_VERSION_SUFFIX = re.compile(r"-\d[\w.\-]*$")


def spark_home() -> Path:
    """The pyspark installation (it holds ``jars/`` and ``bin/``)."""
    import pyspark

    return Path(pyspark.__file__).parent


def java_executable() -> str:
    java_home = os.environ.get("JAVA_HOME")
    if java_home and (Path(java_home) / "bin" / "java").exists():
        return str(Path(java_home) / "bin" / "java")
    found = shutil.which("java")
    if not found:
        raise EnvironmentSetupError(
            f"Java {MIN_JAVA} or newer is required but 'java' is not on PATH: install a JDK "
            f"(e.g. apt-get install openjdk-{MIN_JAVA}-jdk-headless) or set JAVA_HOME"
        )
    return found


def java_major_version() -> int:
    java = java_executable()
    try:
        out = subprocess.run([java, "-version"], capture_output=True, text=True, timeout=60)
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise EnvironmentSetupError(f"cannot run {java}: {exc}") from None
    match = re.search(r'version "(\d+)(?:\.(\d+))?', out.stderr + out.stdout)
    if not match:
        raise EnvironmentSetupError(f"cannot tell the version of {java}; Java {MIN_JAVA}+ is required")
    major = int(match.group(1))
    return int(match.group(2)) if major == 1 else major


def check_java() -> None:
    """Raise a one-line :class:`EnvironmentSetupError` unless Java 17+ is available."""
    major = java_major_version()
    if major < MIN_JAVA:
        raise EnvironmentSetupError(
            f"Java {major} found, Spark 4 needs Java {MIN_JAVA}+: "
            f"install openjdk-{MIN_JAVA} and set JAVA_HOME"
        )


def _artifact_name(jar: Path) -> str:
    name = jar.stem.split("__", 1)[-1]
    return _VERSION_SUFFIX.sub("", name)


def _spark_artifacts() -> set[str]:
    return {_VERSION_SUFFIX.sub("", jar.stem) for jar in (spark_home() / "jars").glob("*.jar")}


def _coordinate_dir(jars_dir: Path, coordinate: str) -> Path:
    return Path(jars_dir).expanduser() / coordinate.replace(":", "__")


def resolve(coordinate: str, jars_dir: Path, quiet: bool = False) -> list[Path]:
    """Return the jars of ``group:artifact:version`` (plus what Spark lacks of its dependencies).

    The first call downloads them from Maven Central, printing Ivy's progress to stderr;
    later calls read the cache and need no network.
    """
    parts = coordinate.split(":")
    if len(parts) != 3 or not all(parts):
        raise EnvironmentSetupError(f"bad Maven coordinate '{coordinate}': expected group:artifact:version")
    target = _coordinate_dir(jars_dir, coordinate)
    marker = target / ".complete"
    if not marker.exists():
        _download(parts, target, quiet)
    return sorted(target.glob("*.jar"))


def _download(parts: list[str], target: Path, quiet: bool) -> None:
    ivy_jar = next((spark_home() / "jars").glob("ivy-*.jar"), None)
    if ivy_jar is None:
        raise EnvironmentSetupError("pyspark's bundled Ivy jar is missing: reinstall pyspark")
    staging = target.with_name(target.name + ".partial")
    shutil.rmtree(staging, ignore_errors=True)
    staging.mkdir(parents=True)
    coordinate = ":".join(parts)
    print(
        f"neurolake: fetching {coordinate} and its dependencies from Maven Central (once)...", file=sys.stderr
    )
    command = [
        java_executable(),
        "-jar",
        str(ivy_jar),
        "-dependency",
        *parts,
        "-confs",
        "default",
        "-cache",
        str(target.parent / ".ivy-cache"),
        "-retrieve",
        str(staging / "[organisation]__[artifact]-[revision](-[classifier]).[ext]"),
    ]
    try:
        result = subprocess.run(
            command,
            stdout=subprocess.DEVNULL if quiet else sys.stderr,
            stderr=subprocess.PIPE,
            text=True,
            timeout=900,
        )
    except subprocess.TimeoutExpired:
        raise EnvironmentSetupError(
            f"fetching {coordinate} timed out: check access to Maven Central"
        ) from None
    jars = list(staging.glob("*.jar"))
    if result.returncode != 0 or not jars:
        shutil.rmtree(staging, ignore_errors=True)
        raise EnvironmentSetupError(
            f"cannot fetch {coordinate} from Maven Central (is the network or a proxy configured?); "
            f"or put its jars into {target} and create {target / '.complete'}"
        )
    provided = _spark_artifacts()
    for jar in jars:
        if _artifact_name(jar) in provided or _artifact_name(jar).startswith("scala-library"):
            jar.unlink()
    (staging / ".complete").write_text(coordinate + "\n")
    shutil.rmtree(target, ignore_errors=True)
    staging.rename(target)
    print(f"neurolake: {coordinate} cached in {target}", file=sys.stderr)


def resolve_all(coordinates: list[str], jars_dir: Path, quiet: bool = False) -> list[Path]:
    """Jars of every coordinate, without duplicates (first coordinate wins)."""
    seen: dict[str, Path] = {}
    for coordinate in coordinates:
        for jar in resolve(coordinate, jars_dir, quiet=quiet):
            seen.setdefault(_artifact_name(jar), jar)
    return list(seen.values())
