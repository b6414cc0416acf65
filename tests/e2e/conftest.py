"""End-to-end fixtures: the project wheel, built once per test run."""

from __future__ import annotations

import pytest

from .cluster import build_wheel


@pytest.fixture(scope="session")
def project_wheel(tmp_path_factory):
    """The project's wheel, as ``pip install`` and ``spark-submit --py-files`` get it."""
    return build_wheel(tmp_path_factory.mktemp("wheel"))
