"""Tenants: each key or token belongs to one; a tenant sees only its namespaces and table patterns.

``service.tenants`` in the settings::

    tenants:
      default: {tables: ["*"]}                      # everything
      finance: {tables: ["gold.*", "silver.orders"]}
      partner: {namespaces: ["s3://partner-bucket"]}

A dataset is visible when its namespace is one of the tenant's ``namespaces`` or its name
matches one of its ``tables`` patterns (``*`` any run of characters, ``?`` one character;
regardless of case).
Anything else does not exist for that tenant: the service answers 404, never 403.
"""

from __future__ import annotations

import fnmatch
import re
from dataclasses import dataclass
from functools import cached_property

from neurolake_spark.config import TenantSettings


@dataclass(frozen=True)
class TenantScope:
    """What one tenant may see."""

    name: str
    namespaces: tuple[str, ...] = ()
    tables: tuple[str, ...] = ()

    @classmethod
    def from_settings(cls, name: str, tenant: TenantSettings) -> TenantScope:
        return cls(name, tuple(tenant.namespaces), tuple(tenant.tables))

    @property
    def unrestricted(self) -> bool:
        """True when the tenant sees every dataset (its patterns include ``*``)."""
        return "*" in self.tables

    @cached_property
    def _pattern(self) -> re.Pattern | None:
        if not self.tables:
            return None
        return re.compile("|".join(f"(?:{fnmatch.translate(p)})" for p in self.tables), re.IGNORECASE)

    def sees(self, name: str, namespace: str | None = None) -> bool:
        """True if the dataset ``name`` (in ``namespace``) is visible to this tenant."""
        if namespace is not None and namespace in self.namespaces:
            return True
        return bool(self._pattern and self._pattern.match(name))
