"""A real Spark standalone cluster on 127.0.0.1 for end-to-end tests (shared helpers).

Example (a module-scoped fixture, so the cluster starts once per test module)::

    @pytest.fixture(scope="module")
    def master(tmp_path_factory):
        with start_standalone(tmp_path_factory.mktemp("cluster"), workers=2) as url:
            yield url

    done = spark_submit(
        master, "jobs/ingest.py", ["--conf-file", conf, "--date", day], py_files=[project_wheel]
    )
    assert done.returncode == 0, done.stderr

The master and workers are the ``spark-class`` daemons of the project venv's pyspark,
each logging to a file in the given folder (shown by :func:`cluster_logs` when a test
fails). Executors run the project venv's Python.
"""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
VENV_BIN = Path(sys.executable).parent
LOCAL_CONF = ROOT / "conf" / "local.yaml"
SUBMIT_CONF = {
    "spark.driver.host": "127.0.0.1",
    "spark.driver.bindAddress": "127.0.0.1",
    "spark.ui.enabled": "false",
    "spark.ui.showConsoleProgress": "false",
}


def free_port() -> int:
    """A TCP port on 127.0.0.1 nobody listens on right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def spark_env(extra: dict[str, str] | None = None) -> dict[str, str]:
    """The environment of Spark daemons and spark-submit: loopback only, the venv's Python."""
    import pyspark

    env = dict(os.environ)
    env.update(
        {
            "SPARK_HOME": str(Path(pyspark.__file__).parent),
            "SPARK_LOCAL_IP": "127.0.0.1",
            "PYSPARK_PYTHON": sys.executable,
            "PYSPARK_DRIVER_PYTHON": sys.executable,
            "PATH": f"{VENV_BIN}{os.pathsep}{env.get('PATH', '')}",
        }
    )
    env.update(extra or {})
    return env


def _spark_class(*args: str) -> list[str]:
    return [str(VENV_BIN / "spark-class"), *args]


def _alive_workers(webui_port: int) -> int:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{webui_port}/json/", timeout=5) as response:
            return int(json.load(response).get("aliveworkers", 0))
    except (OSError, ValueError):
        return -1


def cluster_logs(folder: Path, tail: int = 40) -> str:
    """The last lines of every daemon log in ``folder`` (for assertion messages)."""
    parts = []
    for log in sorted(Path(folder).glob("*.log")):
        lines = log.read_text(errors="replace").splitlines()[-tail:]
        parts.append(f"--- {log.name}\n" + "\n".join(lines))
    return "\n".join(parts)


@contextmanager
def start_standalone(
    folder: Path, workers: int = 1, cores: int = 1, memory: str = "1g", timeout: float = 120
) -> Iterator[str]:
    """Start a master and ``workers`` workers on 127.0.0.1; yield the master URL.

    The daemons are stopped (and their work folders kept in ``folder``) on exit. Raises
    RuntimeError with the daemons' logs if the workers do not register in ``timeout``.
    """
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    port, webui = free_port(), free_port()
    url = f"spark://127.0.0.1:{port}"
    env = spark_env({"SPARK_LOG_DIR": str(folder), "SPARK_WORKER_DIR": str(folder / "work")})
    commands = [
        (
            "master",
            _spark_class(
                "org.apache.spark.deploy.master.Master",
                "--host",
                "127.0.0.1",
                "--port",
                str(port),
                "--webui-port",
                str(webui),
            ),
        )
    ]
    for index in range(workers):
        commands.append(
            (
                f"worker{index + 1}",
                _spark_class(
                    "org.apache.spark.deploy.worker.Worker",
                    url,
                    "--host",
                    "127.0.0.1",
                    "--cores",
                    str(cores),
                    "--memory",
                    memory,
                    "--webui-port",
                    str(free_port()),
                    "--work-dir",
                    str(folder / f"work{index + 1}"),
                ),
            )
        )
    processes: list[subprocess.Popen] = []
    try:
        for name, command in commands:
            with open(folder / f"{name}.log", "wb") as log:
                processes.append(
                    subprocess.Popen(command, env=env, stdout=log, stderr=subprocess.STDOUT, cwd=folder)
                )
            if name == "master":
                _wait(lambda: _alive_workers(webui) >= 0, timeout, "the master did not start", folder)
        _wait(
            lambda: _alive_workers(webui) >= workers, timeout, f"{workers} worker(s) did not register", folder
        )
        yield url
    finally:
        for process in reversed(processes):
            process.terminate()
        for process in processes:
            try:
                process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()


def _wait(condition, timeout: float, what: str, folder: Path) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise RuntimeError(f"Spark standalone: {what} within {timeout:.0f}s\n{cluster_logs(folder)}")
        time.sleep(0.5)


def build_wheel(folder: Path) -> Path:
    """Build the project wheel into ``folder`` from a copy of the sources; return its path.

    pip builds it in an isolated environment with the build requirements of
    pyproject.toml (from pip's cache, or PyPI the first time); the copy keeps build/
    and egg-info folders out of the shared checkout.
    """
    folder = Path(folder)
    source = folder / "src"
    shutil.rmtree(source, ignore_errors=True)
    ignore = shutil.ignore_patterns("__pycache__", "*.pyc", "*.egg-info")
    source.mkdir(parents=True)
    for name in ("pyproject.toml", "README.md"):
        shutil.copy2(ROOT / name, source / name)
    for package in ("neurolake_spark", "ncf_datasource", "pyspark_ncf"):
        if (ROOT / package).is_dir():
            shutil.copytree(ROOT / package, source / package, ignore=ignore)
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "wheel",
            "--no-deps",
            "--quiet",
            "--wheel-dir",
            str(folder),
            str(source),
        ],
        capture_output=True,
        text=True,
        timeout=300,
    )
    wheels = sorted(folder.glob("neurolake_spark-*.whl"))
    if done.returncode != 0 or not wheels:
        raise RuntimeError(f"building the wheel failed:\n{done.stdout}\n{done.stderr}")
    return wheels[-1]


def submit_jars(conf_file: Path = LOCAL_CONF) -> str:
    """The ``--jars`` value for spark-submit (what ``neurolake jars`` prints)."""
    from neurolake_spark import jars
    from neurolake_spark.config import load_settings
    from neurolake_spark.session import jvm_coordinates

    settings = load_settings(conf_file)
    return ",".join(
        str(p) for p in jars.resolve_all(jvm_coordinates(settings), settings.jvm.jars_dir, quiet=True)
    )


def spark_submit(
    master: str,
    job: str | Path,
    args: list[str],
    env: dict[str, str] | None = None,
    *,
    py_files: list[Path] | None = None,
    conf: dict[str, str] | None = None,
    timeout: float = 900,
) -> subprocess.CompletedProcess:
    """Run ``spark-submit --master MASTER --jars <Delta jars> [--py-files ...] JOB ARGS``.

    ``job`` is relative to the repository root (``jobs/ingest.py``) or absolute; the
    result carries the return code, stdout and stderr as text.
    """
    command = [str(VENV_BIN / "spark-submit"), "--master", master, "--jars", submit_jars()]
    if py_files:
        command += ["--py-files", ",".join(str(p) for p in py_files)]
    for key, value in {**SUBMIT_CONF, **(conf or {})}.items():
        command += ["--conf", f"{key}={value}"]
    command += [str(ROOT / job), *args]
    return subprocess.run(
        command, env=spark_env(env), capture_output=True, text=True, timeout=timeout, cwd=ROOT
    )
