"""The Spark data source ``ncf`` (Spark 4.2 Python Data Source API) over NCF tables.

Import it explicitly (``ncf_datasource`` itself never imports Spark)::

    from ncf_datasource.spark import NCFDataSource
    spark.dataSource.register(NCFDataSource)

After ``pip install`` of the project, the top-level module ``pyspark_ncf`` makes Spark
discover the source by itself, with no registration.
"""

from .source import NCFDataSource

__all__ = ["NCFDataSource"]
