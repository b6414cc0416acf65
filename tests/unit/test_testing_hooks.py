"""The crash tests' stop points act only when both test-only env vars are set.

Real processes (the pausing one is SIGKILLed, as the crash tests do), no Spark.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from neurolake_spark.testing_hooks import MARKER, PAUSE_AT_ENV, PAUSE_DIR_ENV, hold_commit, pause_at

ROOT = Path(__file__).resolve().parents[2]
POINT = "optimize:bronze.orders"
# Stops at the point when the hook names it: nothing is printed before it is killed.
PAUSER = f"""
from neurolake_spark.testing_hooks import pause_at
pause_at({POINT!r})
print("went on", flush=True)
"""


@pytest.fixture
def unset(monkeypatch):
    monkeypatch.delenv(PAUSE_AT_ENV, raising=False)
    monkeypatch.delenv(PAUSE_DIR_ENV, raising=False)
    return monkeypatch


@pytest.mark.parametrize(
    "env",
    [
        {},
        {PAUSE_AT_ENV: POINT},
        {PAUSE_DIR_ENV: "{dir}"},
        {PAUSE_AT_ENV: POINT, PAUSE_DIR_ENV: "{dir}/missing"},
        {PAUSE_AT_ENV: "optimize:silver.orders", PAUSE_DIR_ENV: "{dir}"},
        {PAUSE_AT_ENV: POINT.upper(), PAUSE_DIR_ENV: "{dir}"},
    ],
    ids=["unset", "no-dir", "no-point", "dir-missing", "other-point", "not-exact"],
)
def test_hooks_do_nothing_unless_both_vars_name_this_point(unset, tmp_path, env):
    for key, value in env.items():
        unset.setenv(key, value.format(dir=tmp_path))
    frame = object()  # not even a DataFrame: an idle hook must not touch what it is given

    pause_at(POINT)
    assert hold_commit(frame, f"commit:{POINT}") is frame
    assert hold_commit(frame, POINT) is frame

    assert not list(tmp_path.iterdir()), "an idle hook writes nothing"


def test_the_named_point_stops_the_process_and_announces_it(tmp_path):
    env = {**os.environ, PAUSE_AT_ENV: POINT, PAUSE_DIR_ENV: str(tmp_path)}
    process = subprocess.Popen(
        [sys.executable, "-c", PAUSER],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        start_new_session=True,
    )
    try:
        deadline = time.monotonic() + 60
        while not (tmp_path / MARKER).exists():
            assert process.poll() is None, process.communicate()
            assert time.monotonic() < deadline, "no marker"
            time.sleep(0.05)
        marker = json.loads((tmp_path / MARKER).read_text())
        assert marker["point"] == POINT and marker["pid"] == process.pid
        assert process.poll() is None, "it waits at the point"
    finally:
        os.killpg(process.pid, signal.SIGKILL)
    out, err = process.communicate(timeout=30)
    assert out == b"", "it never went past the point"
    assert f"{PAUSE_AT_ENV}={POINT}: stopping here (a test-only setting".encode() in err
