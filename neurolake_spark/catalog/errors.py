"""Errors of the catalog: each one is a single line the CLI prints as is."""

from neurolake_spark.errors import NeuroLakeError


class CatalogError(NeuroLakeError):
    """The catalog cannot answer: a bad time, an unreachable database, an unknown run..."""

    exit_code = 2


class InvalidEventError(CatalogError):
    """An OpenLineage event is malformed (not a dict, no run id, a bad event time...)."""


class UnknownAssetError(CatalogError):
    """A dataset, job, column or run the catalog has never seen."""
