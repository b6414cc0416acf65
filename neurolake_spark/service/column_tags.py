"""PII tags of a table's columns, as the catalog route and the console's table page show them.

A column is PII when ``conf/pii.yaml`` says so without reading data (tagged, named like a PII
class or given a policy; :meth:`~neurolake_spark.quality.pii.PiiPolicies.declared_columns`). A
source's silver table was masked on its way in by its bronze table's policies, so those are the
ones shown for it.
"""

from __future__ import annotations

from collections.abc import Iterable

from neurolake_spark.config import Settings
from neurolake_spark.quality.pii import load_policies


def policy_table(settings: Settings, name: str) -> str:
    """The table whose PII policies apply to ``name``'s columns."""
    for source in settings.pipeline_definition().sources.values():
        if source.silver == name:
            return source.bronze
    return name


def pii_columns(settings: Settings, name: str, columns: Iterable[str]) -> dict[str, tuple[str, str]]:
    """``{column: (PII class, policy)}`` of ``name``'s PII ``columns``."""
    policies = load_policies(settings.quality.pii_policies)
    return policies.declared_columns(policy_table(settings, name), columns)


def column_tags(found: tuple[str, str] | None) -> list[str]:
    """A column's tags in the API: ``pii:<class>`` and ``policy:<masking policy>`` for PII."""
    return [f"pii:{found[0]}", f"policy:{found[1]}"] if found else []
