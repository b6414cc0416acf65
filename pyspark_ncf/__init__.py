"""Spark 4 discovers Python data sources in top-level modules named ``pyspark_*`` that
define ``DefaultSource``: this one makes ``format("ncf")`` work in any session.

Spark rejects a reader that takes pushed filters unless
``spark.sql.python.filterPushdown.enabled`` is true, so the discovered source pushes no
filters unless asked with ``.option("filterPushdown", "true")`` (with that setting on).
The project's sessions register :class:`ncf_datasource.spark.NCFDataSource`, which does.
"""

from ncf_datasource.spark import NCFDataSource


class DefaultSource(NCFDataSource):
    """The ``ncf`` source as discovered by a plain Spark session."""

    filter_pushdown = False


__all__ = ["DefaultSource"]
