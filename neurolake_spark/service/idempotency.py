"""Idempotency keys of writes: a retry with the same ``Idempotency-Key`` gets the first answer.

Keys live in the catalog database (table ``idempotency_keys``), per caller (tenant and
subject), so every worker sees them. A write first *claims* its key with a fingerprint of its
route and body; then:

- a new key is claimed and the write runs; its answer is stored (:meth:`IdempotencyStore.complete`),
  or, when the write failed, the claim is dropped (:meth:`IdempotencyStore.release`) so a retry
  may try again;
- a key whose write has finished returns that answer (:class:`Replay`) and nothing runs;
- a key whose write still runs is a 409 conflict, and a key sent with another route or body a
  422 (as the IETF ``Idempotency-Key`` header draft says).

Example::

    store = IdempotencyStore(catalog)
    replay = store.claim("default:ci", "k-1", "/api/v1/data/bulk/delete", fingerprint(route, body))
    if replay is None:
        answer = run_the_write()
        store.complete("default:ci", "k-1", 200, answer)
"""

from __future__ import annotations

import hashlib
import json
import re
from dataclasses import dataclass
from typing import Any

from sqlalchemy import and_, delete, select, update
from sqlalchemy.exc import IntegrityError

from neurolake_spark.catalog import schema as s
from neurolake_spark.service.keys import utc_now
from neurolake_spark.service.problems import Problem

HEADER = "Idempotency-Key"
_KEY = re.compile(r"^[\x21-\x7e]{1,200}$")


@dataclass(frozen=True)
class Replay:
    """The stored answer of an earlier request with the same key."""

    status: int
    body: Any


def fingerprint(route: str, body: bytes) -> str:
    """What makes two requests the same request: the route and the exact body."""
    return hashlib.sha256(route.encode("utf-8") + b"\n" + body).hexdigest()


def checked_key(value: str | None) -> str | None:
    """The header's value, or None without one; 1 to 200 visible ASCII characters."""
    if value is None:
        return None
    if not _KEY.match(value):
        raise Problem("invalid-parameter", f"{HEADER} must be 1 to 200 visible ASCII characters")
    return value


class IdempotencyStore:
    """Claims, answers and releases of idempotency keys in the catalog database."""

    def __init__(self, store):
        self.store = store

    def _where(self, scope: str, key: str):
        k = s.idempotency_keys.c
        return and_(k.scope == scope, k.idempotency_key == key)

    def claim(self, scope: str, key: str, route: str, print_: str) -> Replay | None:
        """Claim ``key`` for this request (None: go on and write), or the earlier answer."""
        try:
            with self.store.write() as conn:
                conn.execute(
                    s.idempotency_keys.insert().values(
                        scope=scope[:300],
                        idempotency_key=key,
                        route=route[:300],
                        fingerprint=print_,
                        created_at=utc_now(),
                    )
                )
            return None
        except IntegrityError:
            pass
        with self.store.read() as conn:
            row = conn.execute(select(s.idempotency_keys).where(self._where(scope, key))).first()
        if row is None:  # released in between: the earlier write failed
            return self.claim(scope, key, route, print_)
        if row.fingerprint != print_:
            raise Problem(
                "invalid-parameter",
                f"this {HEADER} was used for another request; send a new key for a different body",
            )
        if row.completed_at is None:
            raise Problem("conflict", f"a request with this {HEADER} is still running; retry later")
        return Replay(row.status, json.loads(row.response))

    def complete(self, scope: str, key: str, status: int, body: Any) -> None:
        """Store the answer of the claimed key's write."""
        with self.store.write() as conn:
            conn.execute(
                update(s.idempotency_keys)
                .where(self._where(scope, key))
                .values(completed_at=utc_now(), status=status, response=json.dumps(body, default=str))
            )

    def release(self, scope: str, key: str) -> None:
        """Drop an unanswered claim (its write failed and changed nothing)."""
        with self.store.write() as conn:
            conn.execute(
                delete(s.idempotency_keys).where(
                    and_(self._where(scope, key), s.idempotency_keys.c.completed_at.is_(None))
                )
            )
