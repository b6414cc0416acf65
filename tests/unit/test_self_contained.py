"""The repository holds everything its code and tests read: a fresh clone in an empty
folder must pass the suite (nothing may be read from beside the checkout)."""

from __future__ import annotations

import ast
import subprocess
from pathlib import Path

from tests.openlineage_schema import SPEC_DIR, validate_event

ROOT = Path(__file__).resolve().parents[2]
CHECKED = [
    "neurolake_spark",
    "ncf_datasource",
    "pyspark_ncf",
    "jobs",
    "tests",
    "scripts",
    "benchmarks",
    "airflow_dags",
    "conf",
    "docker",
    ".ci",
    "pyproject.toml",
]
SIBLING = "shared"  # the folder beside the checkout that a user's clone does not have
OUTSIDE_MARKERS = [f"../{SIBLING}", f"..\\{SIBLING}", f'/ "{SIBLING}"', "openlineage-spec"]


def _tracked_files() -> list[Path]:
    listed = subprocess.run(
        ["git", "ls-files", "--", *CHECKED], cwd=ROOT, capture_output=True, text=True, check=True
    )
    return [ROOT / name for name in listed.stdout.splitlines() if (ROOT / name).is_file()]


def _file_anchored_climb(node: ast.AST) -> int | None:
    """How many folders ``Path(__file__)...parent(s)`` climbs above the file's own folder, else None."""
    climb = 0
    while True:
        if (
            isinstance(node, ast.Subscript)
            and isinstance(node.value, ast.Attribute)
            and node.value.attr == "parents"
        ):
            if not isinstance(node.slice, ast.Constant):
                return None
            climb += node.slice.value + 1
            node = node.value.value
        elif isinstance(node, ast.Attribute) and node.attr == "parent":
            climb += 1
            node = node.value
        elif (
            isinstance(node, ast.Call)
            and isinstance(node.func, ast.Attribute)
            and node.func.attr in {"resolve", "absolute"}
        ):
            node = node.func.value
        elif isinstance(node, ast.Call) and getattr(node.func, "id", None) == "Path" and node.args:
            first = node.args[0]
            return climb - 1 if isinstance(first, ast.Name) and first.id == "__file__" else None
        else:
            return None


def test_no_file_names_a_path_beside_the_checkout():
    offenders = []
    for path in (p for p in _tracked_files() if p != Path(__file__).resolve()):
        try:
            text = path.read_text()
        except UnicodeDecodeError:
            continue
        offenders += [f"{path.relative_to(ROOT)}: {marker}" for marker in OUTSIDE_MARKERS if marker in text]
    assert not offenders, f"files that read outside the repository: {offenders}"


def test_no_python_file_climbs_above_the_repository_root():
    escapes = []
    for path in (p for p in _tracked_files() if p.suffix == ".py"):
        depth = len(path.relative_to(ROOT).parent.parts)
        for node in ast.walk(ast.parse(path.read_text())):
            climb = _file_anchored_climb(node)
            if climb is not None and climb > depth:
                escapes.append(
                    f"{path.relative_to(ROOT)}:{node.lineno} climbs {climb} folders from a depth of {depth}"
                )
    assert not escapes, escapes


def test_the_climb_check_sees_an_escape():
    """The AST check above must recognise the shape that once read the sibling folder."""
    node = ast.parse('Path(__file__).resolve().parents[1].parent / "x"').body[0].value.left
    assert _file_anchored_climb(node) == 2
    assert _file_anchored_climb(ast.parse("Path(__file__).parent").body[0].value) == 0


def test_the_openlineage_spec_is_inside_the_repository_and_validates_an_event():
    assert SPEC_DIR.resolve().is_relative_to(ROOT)
    event = {
        "eventType": "START",
        "eventTime": "2026-11-24T02:00:00Z",
        "producer": "https://github.com/neurolake/neurolake-spark",
        "schemaURL": "https://openlineage.io/spec/2-0-2/OpenLineage.json#/$defs/RunEvent",
        "run": {"runId": "0190a9b2-5d0c-7c6e-8a55-0a2b3c4d5e6f"},
        "job": {"namespace": "neurolake", "name": "silver"},
    }
    validate_event(event)
