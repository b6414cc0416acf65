"""Opaque page tokens (``page_token`` / ``next_page_token``), as Unity Catalog and Delta Sharing use.

A token is URL-safe base64 of a small JSON object (``{"o": 100}`` for an offset, ``{"b": 912}``
for "before id 912"); clients must not build or read them. A token that does not decode
is a 422 ``invalid-parameter``.
"""

from __future__ import annotations

import base64
import binascii
import json
from typing import Annotated, Any

from fastapi import Query

from neurolake_spark.service.problems import Problem

DEFAULT_PAGE_SIZE = 50
MaxResults = Annotated[int | None, Query(ge=1, le=1000, description="page size (default 50)")]
PageToken = Annotated[str | None, Query(max_length=200, description="next_page_token of the previous page")]


def encode_token(position: dict[str, int]) -> str:
    return base64.urlsafe_b64encode(json.dumps(position, separators=(",", ":")).encode()).decode().rstrip("=")


def decode_token(token: str | None, field: str) -> int | None:
    """The integer ``field`` of ``token`` (None for no token); raises a problem for a forged one."""
    if not token:
        return None
    try:
        raw = base64.urlsafe_b64decode(token + "=" * (-len(token) % 4))
        value: Any = json.loads(raw)[field]
    except (binascii.Error, ValueError, KeyError, TypeError, UnicodeDecodeError):
        value = None
    if not isinstance(value, int) or isinstance(value, bool) or value < 0:
        raise Problem("invalid-parameter", "page_token is not a token this list returned")
    return value


def page_size(max_results: int | None, cap: int) -> int:
    """``max_results`` bounded by ``service.max_page_size`` (default 50)."""
    return min(max_results or DEFAULT_PAGE_SIZE, cap)
