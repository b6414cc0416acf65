"""Errors of the catalog: one line each, with the facts as fields.

The message of each error (``str(error)``) speaks the catalog's words and names no
command or option; the fields (the name asked for, the candidates, the bad value) let a
front end say it in its own words: the CLI adds its options and commands (see
:mod:`neurolake_spark.cli.display`), an HTTP API can return them as problem details.
"""

from __future__ import annotations

from pathlib import Path

from neurolake_spark.errors import NeuroLakeError

TIME_FORMATS = "YYYY-MM-DD or YYYY-MM-DDTHH:MM[:SS][Z|+HH:MM] (UTC unless a zone is given)"


class CatalogError(NeuroLakeError):
    """The catalog cannot answer: a bad time, an unreachable database, an unknown run..."""


class InvalidEventError(CatalogError):
    """An OpenLineage event is malformed (not a dict, no run id, a bad event time...)."""


class InvalidTimeError(CatalogError):
    """``value`` given for ``field`` (``as_of``, ``run_date``...) is neither a date nor an ISO time."""

    def __init__(self, field: str, value: str):
        self.field = field
        self.value = value
        super().__init__(f"{field} {value!r} is not a time: use {TIME_FORMATS}")


class CatalogNotFoundError(CatalogError):
    """No catalog database at ``path`` yet (nothing has run against this warehouse)."""

    def __init__(self, path: Path):
        self.path = path
        super().__init__(f"no catalog at {path} yet: run the pipeline first")


class AmbiguousDatasetError(CatalogError):
    """Dataset ``name`` exists in several ``namespaces`` and none was chosen."""

    def __init__(self, name: str, namespaces: list[str]):
        self.name = name
        self.namespaces = namespaces
        super().__init__(f"'{name}' exists in several namespaces ({', '.join(namespaces)})")


class UnknownAssetError(CatalogError):
    """A dataset, job, column, tag or run the catalog has never seen."""


class UnknownDatasetError(UnknownAssetError):
    """No dataset ``name`` (in ``namespace``, if given); ``suggestions`` are the closest known names."""

    def __init__(self, name: str, namespace: str | None, suggestions: list[str]):
        self.name = name
        self.namespace = namespace
        self.suggestions = suggestions
        where = f" in namespace {namespace}" if namespace else ""
        hint = f" (did you mean {', '.join(suggestions)}?)" if suggestions else ""
        super().__init__(f"unknown table '{name}'{where}: the catalog has no table of that name{hint}")


class UnknownJobError(UnknownAssetError):
    """No job ``name``; ``known`` lists (up to 20) job names the catalog has."""

    def __init__(self, name: str, known: list[str]):
        self.name = name
        self.known = known
        super().__init__(f"unknown job '{name}' (known jobs: {', '.join(known) or 'none yet'})")


class UnknownRunError(UnknownAssetError):
    """No run with id ``run``."""

    def __init__(self, run: str):
        self.run = run
        super().__init__(f"unknown run '{run}'")


class UnknownColumnError(UnknownAssetError):
    """Dataset ``dataset`` has no column ``column``; ``columns`` are (up to 30 of) the ones it has."""

    def __init__(self, dataset: str, column: str, columns: list[str]):
        self.dataset = dataset
        self.column = column
        self.columns = columns
        shown = ", ".join(columns) or "none recorded"
        super().__init__(f"table {dataset} has no column '{column}' (its columns: {shown})")


class UnknownTagError(UnknownAssetError):
    """Dataset ``dataset`` does not carry ``missing``; ``present`` are the tags it has."""

    def __init__(self, dataset: str, missing: list[str], present: list[str]):
        self.dataset = dataset
        self.missing = missing
        self.present = present
        super().__init__(
            f"{dataset} has no tag {', '.join(missing)} (its tags: {', '.join(present) or 'none'})"
        )
