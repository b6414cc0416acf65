"""Quality gates on Spark with Great Expectations, and PII detection and masking.

- :mod:`~neurolake_spark.quality.suites`: rules per table from ``conf/quality/<table>.yaml``;
- :mod:`~neurolake_spark.quality.gate`: :class:`QualityGates`, the block / quarantine / warn
  hooks that ``build_silver`` and ``build_gold`` call;
- :mod:`~neurolake_spark.quality.pii`: detection (names, sampled values, NCF tags) and masking
  policies from ``conf/pii.yaml``.

See ``docs/quality.md``.
"""

from neurolake_spark.quality.gate import QUARANTINE_TABLE, QualityGateError, QualityGates
from neurolake_spark.quality.pii import Masker, detect_pii, load_policies, tags_from_arrow_schema
from neurolake_spark.quality.suites import Suite, load_suite, load_suites

__all__ = [
    "QUARANTINE_TABLE",
    "Masker",
    "QualityGateError",
    "QualityGates",
    "Suite",
    "detect_pii",
    "load_policies",
    "load_suite",
    "load_suites",
    "tags_from_arrow_schema",
]
