"""The audit log: every write, every authentication failure and every key operation.

Records live in the catalog database (table ``audit_log``), so every worker and the CLI
write to one place. Parameters are stored with secrets removed (:func:`scrub`): values of
keys that name a secret, and any value shaped like an API key or a JWT, become ``"[removed]"``.

Example::

    audit = AuditLog(store)
    audit.record(action="tag.add", actor="ci-reader", tenant="default", status=200,
                 parameters={"name": "gold.daily_revenue", "tag": "finance"})
    page = audit.list(max_results=50)
"""

from __future__ import annotations

import json
import re
from dataclasses import asdict, dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import and_, select

from neurolake_spark.catalog import schema as s
from neurolake_spark.service.keys import looks_like_key, utc_now

REMOVED = "[removed]"
_SECRET_NAMES = re.compile(r"key|token|secret|password|passwd|authorization|cookie|csrf|credential", re.I)
_JWT = re.compile(r"^[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]*$")
_BEARER = re.compile(r"^bearer\s", re.I)
MAX_TEXT = 500


def scrub(value: Any, depth: int = 0) -> Any:
    """``value`` with secrets replaced by ``"[removed]"`` and long texts cut (for logs and the audit log)."""
    if depth > 5:
        return "[nested]"
    if isinstance(value, dict):
        return {
            str(k): REMOVED if _SECRET_NAMES.search(str(k)) else scrub(v, depth + 1)
            for k, v in list(value.items())[:50]
        }
    if isinstance(value, (list, tuple)):
        return [scrub(v, depth + 1) for v in list(value)[:50]]
    if isinstance(value, str):
        if looks_like_key(value) or _JWT.match(value) or _BEARER.match(value):
            return REMOVED
        return value if len(value) <= MAX_TEXT else value[:MAX_TEXT] + "..."
    if value is None or isinstance(value, (bool, int, float)):
        return value
    return str(value)[:MAX_TEXT]


@dataclass
class AuditRecord:
    """One audited action."""

    id: int
    recorded_at: datetime
    action: str
    actor: str
    key_id: str | None
    role: str | None
    tenant: str | None
    method: str | None
    route: str | None
    target: str | None
    parameters: dict[str, Any] | None
    status: int | None
    client: str | None
    request_id: str | None
    trace_id: str | None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


class AuditLog:
    """Append and read audit records in the catalog database."""

    def __init__(self, store):
        self.store = store

    def record(
        self,
        action: str,
        actor: str,
        *,
        key_id: str | None = None,
        role: str | None = None,
        tenant: str | None = None,
        method: str | None = None,
        route: str | None = None,
        target: str | None = None,
        parameters: dict[str, Any] | None = None,
        status: int | None = None,
        client: str | None = None,
        request_id: str | None = None,
        trace_id: str | None = None,
    ) -> None:
        """Append one record; ``parameters`` are scrubbed first."""
        with self.store.write() as conn:
            conn.execute(
                s.audit_log.insert().values(
                    recorded_at=utc_now(),
                    action=action[:100],
                    actor=(actor or "anonymous")[:200],
                    key_id=key_id,
                    role=role,
                    tenant=tenant,
                    method=method,
                    route=(route or "")[:300] or None,
                    target=(scrub(target) or "")[:1000] or None,
                    parameters=None if parameters is None else json.dumps(scrub(parameters), default=str),
                    status=status,
                    client=(client or "")[:100] or None,
                    request_id=request_id,
                    trace_id=trace_id,
                )
            )

    def list(
        self,
        *,
        tenant: str | None = None,
        action: str | None = None,
        actor: str | None = None,
        since: datetime | None = None,
        before_id: int | None = None,
        max_results: int = 50,
    ) -> list[AuditRecord]:
        """Records newest first; ``before_id`` continues a previous page."""
        a = s.audit_log.c
        conditions = []
        if tenant is not None:
            conditions.append(a.tenant == tenant)
        if action:
            conditions.append(a.action == action)
        if actor:
            conditions.append(a.actor == actor)
        if since is not None:
            conditions.append(a.recorded_at >= since)
        if before_id is not None:
            conditions.append(a.id < before_id)
        query = select(s.audit_log).where(and_(True, *conditions)).order_by(a.id.desc()).limit(max_results)
        with self.store.read() as conn:
            return [
                AuditRecord(
                    **{
                        **row._asdict(),
                        "parameters": json.loads(row.parameters) if row.parameters else None,
                    }
                )
                for row in conn.execute(query)
            ]
