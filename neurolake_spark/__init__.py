"""NeuroLake on Spark: lakehouse pipelines, quality gates and lineage on Apache Spark.

Example::

    from neurolake_spark import Lakehouse
    lh = Lakehouse.open("conf/local.yaml")
    lh.table("silver.orders").show()
"""

from neurolake_spark.lakehouse import Lakehouse

__version__ = "0.1.0"
__all__ = ["Lakehouse", "__version__"]
