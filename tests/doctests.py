"""Running the ``>>>`` examples of the public API's docstrings, in a folder of their own.

The examples use relative paths (``conf/local.yaml``, ``users.ncf``, ``warehouse/events``):
:func:`example_folder` makes a temp folder with a copy of ``conf/`` the current directory,
its warehouse the folder's ``warehouse/``, and the session settings of the test process.
"""

from __future__ import annotations

import doctest
import io
import shutil
from pathlib import Path
from types import ModuleType

import pytest

ROOT = Path(__file__).resolve().parents[1]
OPTIONS = doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE


def example_folder(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """``tmp_path`` with a copy of ``conf/``, made the current directory."""
    shutil.copytree(ROOT / "conf", tmp_path / "conf")
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("NEUROLAKE__JVM__JARS_DIR", str(ROOT / ".cache" / "jars"))
    monkeypatch.setenv("NEUROLAKE__SPARK__SHUFFLE_PARTITIONS", "2")  # the test session's
    return tmp_path


def run_examples(module: ModuleType) -> int:
    """Run every ``>>>`` example in ``module``'s docstrings; fail naming each one that does not
    give what it shows. Returns how many examples ran."""
    runner = doctest.DocTestRunner(optionflags=OPTIONS)
    report = io.StringIO()
    for test in doctest.DocTestFinder().find(module):
        runner.run(test, out=report.write)
    result = runner.summarize(verbose=False)
    assert result.failed == 0, report.getvalue()
    assert result.attempted > 0, f"{module.__name__} has no example to run"
    return result.attempted
