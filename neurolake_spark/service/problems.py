"""RFC 9457 problem details: every error the service answers is ``application/problem+json``.

Each kind of problem has a stable ``type`` (``urn:neurolake:problem:<slug>``) that clients
may switch on; ``title`` is fixed per type, ``detail`` says what went wrong with this request.
A detail never carries a traceback, an internal path, SQL text or a secret: unexpected
errors answer ``internal-error`` with only the request id, and the traceback goes to the log.

Example::

    raise Problem("not-found", "unknown table 'silver.ordres' (did you mean silver.orders?)",
                  suggestions=["silver.orders"])
"""

from __future__ import annotations

from typing import Any

from fastapi.responses import JSONResponse

PROBLEM_MEDIA_TYPE = "application/problem+json"
TYPE_PREFIX = "urn:neurolake:problem:"

PROBLEM_TYPES: dict[str, tuple[int, str]] = {
    # slug: (status, title)
    "bad-request": (400, "The request is malformed"),
    "malformed-json": (400, "The request body is not valid JSON"),
    "invalid-parameter": (422, "A parameter or field is invalid"),
    "invalid-event": (422, "The OpenLineage event is invalid"),
    "statement-refused": (422, "The statement may not run"),
    "unauthenticated": (401, "Authentication required"),
    "forbidden": (403, "Not allowed for this role"),
    "csrf-failed": (403, "CSRF token missing or wrong"),
    "not-found": (404, "Not found"),
    "method-not-allowed": (405, "Method not allowed"),
    "conflict": (409, "Conflict"),
    "payload-too-large": (413, "Request body too large"),
    "unsupported-media-type": (415, "Unsupported media type"),
    "rate-limited": (429, "Too many requests"),
    "untrusted-host": (400, "Host not allowed"),
    "internal-error": (500, "Internal error"),
    "catalog-unavailable": (503, "The catalog database is unavailable"),
}


def problem_type(slug: str) -> str:
    """The stable ``type`` URI of a problem slug."""
    return TYPE_PREFIX + slug


class Problem(Exception):
    """An error answered as problem+json; ``extra`` members are added to the body (RFC 9457 extensions)."""

    def __init__(
        self,
        slug: str,
        detail: str,
        status: int | None = None,
        headers: dict[str, str] | None = None,
        **extra: Any,
    ):
        if slug not in PROBLEM_TYPES:
            raise ValueError(f"unknown problem type {slug!r}")
        super().__init__(detail)
        self.slug = slug
        self.detail = detail
        self.status = status or PROBLEM_TYPES[slug][0]
        self.headers = headers or {}
        self.extra = extra

    def body(self, request_id: str | None = None, instance: str | None = None) -> dict[str, Any]:
        body: dict[str, Any] = {
            "type": problem_type(self.slug),
            "title": PROBLEM_TYPES[self.slug][1],
            "status": self.status,
            "detail": self.detail,
        }
        if instance:
            body["instance"] = instance
        if request_id:
            body["request_id"] = request_id
        body.update(self.extra)
        return body


def problem_response(problem: Problem, request_id: str | None = None, instance: str | None = None):
    """The JSON response of ``problem``."""
    return JSONResponse(
        problem.body(request_id, instance),
        status_code=problem.status,
        headers=problem.headers,
        media_type=PROBLEM_MEDIA_TYPE,
    )


def problem_schema() -> dict[str, Any]:
    """The OpenAPI schema of a problem body (referenced by every route's error responses)."""
    return {
        "type": "object",
        "required": ["type", "title", "status", "detail"],
        "properties": {
            "type": {"type": "string", "enum": [problem_type(s) for s in PROBLEM_TYPES]},
            "title": {"type": "string"},
            "status": {"type": "integer", "minimum": 400, "maximum": 599},
            "detail": {"type": "string"},
            "instance": {"type": "string"},
            "request_id": {"type": "string"},
            "errors": {"type": "array", "items": {"type": "object"}},
            "suggestions": {"type": "array", "items": {"type": "string"}},
            "checks": {"type": "object"},
        },
        "additionalProperties": True,
    }
