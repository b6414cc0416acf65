"""NeuroLake on Spark: lakehouse pipelines, quality gates and lineage on Apache Spark.

Example (more in :mod:`neurolake_spark.lakehouse`)::

    >>> from neurolake_spark import Lakehouse
    >>> lh = Lakehouse.open("conf/local.yaml")
    >>> lh.resolve("silver.orders").format
    'delta'
"""

from neurolake_spark.lakehouse import Lakehouse
from neurolake_spark.version import __version__

__all__ = ["Lakehouse", "__version__"]
