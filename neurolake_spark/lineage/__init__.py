"""OpenLineage events of every :class:`~neurolake_spark.runs.JobRun`, and their delivery.

- :mod:`~neurolake_spark.lineage.events`: a run's START / COMPLETE / FAIL ``RunEvent``
  with its datasets and facets (schema, column lineage, statistics, versions, quality).
- :mod:`~neurolake_spark.lineage.transports`: console, file, http, composite and catalog
  backends chosen by ``lineage.transports``.
- :mod:`~neurolake_spark.lineage.spool`: per-backend durable queues and circuit breakers.
- :mod:`~neurolake_spark.lineage.delivery`: :class:`~neurolake_spark.lineage.delivery.LineageEmitter`
  sends or spools each event; :func:`~neurolake_spark.lineage.delivery.replay` delivers
  what was spooled, in order.
- :mod:`~neurolake_spark.lineage.listener`: the ``RunListener`` that ties them to ``JobRun``.
- :mod:`~neurolake_spark.lineage.spark_listener`: the optional ``openlineage-spark`` JVM listener.

See ``docs/lineage.md``.
"""

from neurolake_spark.errors import NeuroLakeError


class LineageEventError(NeuroLakeError):
    """An event is malformed: not JSON, or missing what identifies it."""
