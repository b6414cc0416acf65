"""The ``ncf`` source outside the project's session: auto-discovery, and a writer killed mid-write.

Each test runs a plain ``SparkSession`` (nothing registered) in a subprocess whose Python
path is the project's wheel installed with ``pip install --target``: what a user has after
``pip install neurolake-spark``.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pyarrow as pa
import pytest

from ncf_datasource.table import NCFTable, vacuum


def spark_script(body: str) -> str:
    return textwrap.dedent("""
        import sys
        from pyspark.sql import SparkSession
        spark = (SparkSession.builder.master("local[1]").config("spark.ui.enabled", "false")
                 .config("spark.driver.bindAddress", "127.0.0.1")
                 .config("spark.driver.host", "127.0.0.1").getOrCreate())
        path = sys.argv[1]
    """) + textwrap.dedent(body)


@pytest.fixture(scope="module")
def installed(project_wheel, tmp_path_factory) -> Path:
    """A folder holding the installed project (no dependencies: the test venv has them)."""
    target = tmp_path_factory.mktemp("site")
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "install",
            "--quiet",
            "--no-deps",
            "--target",
            str(target),
            str(project_wheel),
        ],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr
    return target


def environment(site: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("PYSPARK_GATEWAY")}
    env.update(PYTHONPATH=str(site), PYSPARK_PYTHON=sys.executable, SPARK_LOCAL_IP="127.0.0.1")
    return env


def test_an_installed_project_makes_a_plain_session_discover_the_ncf_source(installed, tmp_path):
    script = tmp_path / "plain.py"
    script.write_text(
        spark_script("""
        spark.range(5).write.format("ncf").mode("append").save(path)
        df = spark.read.format("ncf").load(path)
        print("ROWS", df.where("id > 1").count(), sorted(r.id for r in df.collect()))
    """)
    )
    done = subprocess.run(
        [sys.executable, str(script), str(tmp_path / "t")],
        env=environment(installed),
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=400,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    assert "ROWS 3 [0, 1, 2, 3, 4]" in done.stdout
    assert NCFTable(tmp_path / "t").read().num_rows == 5


def test_a_writer_killed_mid_write_leaves_the_previous_version(installed, tmp_path):
    table = NCFTable.create(tmp_path / "t", pa.schema([("id", pa.int64())]))
    table.append(pa.table({"id": [1, 2, 3]}))
    script = tmp_path / "slow_writer.py"
    script.write_text(
        spark_script("""
        import time
        import pyarrow as pa

        def slowly(batches):
            for batch in batches:
                for i in range(0, batch.num_rows, 100):
                    time.sleep(0.2)
                    yield batch.slice(i, 100)

        df = spark.range(0, 100_000, numPartitions=1).mapInArrow(slowly, "id long")
        df.write.format("ncf").mode("append").option("rowGroupSize", 100).save(path)
    """)
    )
    process = subprocess.Popen(
        [sys.executable, str(script), str(table.path)],
        env=environment(installed),
        cwd=tmp_path,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    try:
        deadline = time.time() + 300
        while not any(n.endswith(".tmp") for n in os.listdir(table.path)):
            assert process.poll() is None, "the writer ended before it started writing"
            assert time.time() < deadline, "the writer never started writing"
            time.sleep(0.2)
        time.sleep(1)
    finally:
        os.killpg(process.pid, signal.SIGKILL)
        process.wait(30)
    assert table.version == 1
    assert table.read().column("id").to_pylist() == [1, 2, 3]
    leftovers = vacuum(table, retention_hours=0, force=True)
    assert leftovers and all(n.endswith(".tmp") for n in leftovers)
    assert table.read().column("id").to_pylist() == [1, 2, 3]
