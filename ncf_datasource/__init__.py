"""NCF: NeuroLake's columnar file format, its tables and its Spark data source.

The format layer (this package's top level) is plain Python on pyarrow, shaped like
``pyarrow.parquet``::

    >>> import pyarrow as pa
    >>> import ncf_datasource as ncf
    >>> table = pa.table({"id": list(range(20)), "email": [f"u{i}@example.com" for i in range(20)]})
    >>> ncf.write_table(table, "users.ncf", sort_key="id", column_tags={"email": {"pii": "email"}})
    >>> ncf.read_table("users.ncf", columns=["id", "email"], filter=[("id", ">=", 18)]).to_pylist()
    [{'id': 18, 'email': 'u18@example.com'}, {'id': 19, 'email': 'u19@example.com'}]
    >>> ncf.NCFFile("users.ncf").lookup(12).to_pylist()
    [{'id': 12, 'email': 'u12@example.com'}]
    >>> print(ncf.format_inspect(ncf.inspect("users.ncf")))
    NCF file users.ncf
      format version 1.1, ...
      20 rows in 1 row groups, ...
      sort key: id
    schema:
      id: long
      email: string  [pii=email]
    ...

Importing this package never imports Spark.
"""

from .format import *  # noqa: F403 - the format layer's public names are this package's
from .format import __all__ as __all__
