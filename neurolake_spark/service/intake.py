"""OpenLineage intake: validate an event against the spec, then store it in the catalog.

Validation uses the official JSON Schema shipped as package data (``openlineage/OpenLineage.json``,
spec 2-0-2) with ``jsonschema``: the openlineage-python client's models are classes for
*building* events and do not check a received JSON document, while the schema states exactly
what producers must send (required fields, event types, ``uuid`` run ids, ISO 8601 times, facets
with ``_producer`` and ``_schemaURL``). Facet bodies are checked as base facets only, as Marquez
does, so producers with custom or newer facets are accepted.

Storing is :meth:`CatalogStore.ingest`, idempotent on the event's identity (run id, event
type, event time, job): a re-sent event is a no-op.
"""

from __future__ import annotations

import json
import re
from functools import cache
from importlib import resources
from typing import Any

from jsonschema import Draft202012Validator, FormatChecker

_DATE_TIME = re.compile(r"^\d{4}-\d{2}-\d{2}[Tt ]\d{2}:\d{2}:\d{2}(\.\d+)?([Zz]|[+-]\d{2}:?\d{2})$")
_URI = re.compile(r"^[A-Za-z][A-Za-z0-9+.\-]*:\S*$")
MAX_ERRORS = 10


@cache
def _validator() -> Draft202012Validator:
    schema = json.loads(
        (resources.files("neurolake_spark.service") / "openlineage" / "OpenLineage.json").read_text()
    )
    checker = FormatChecker(["uuid"])
    checker.checks("date-time")(lambda value: not isinstance(value, str) or bool(_DATE_TIME.match(value)))
    checker.checks("uri")(lambda value: not isinstance(value, str) or bool(_URI.match(value)))
    run_event = {"$ref": "#/$defs/RunEvent", "$defs": schema["$defs"]}
    return Draft202012Validator(run_event, format_checker=checker)


def event_errors(event: Any) -> list[dict[str, str]]:
    """Why ``event`` is not a valid OpenLineage RunEvent: ``[{"location", "message"}]`` (empty if valid)."""
    if not isinstance(event, dict):
        return [{"location": "", "message": f"an event is a JSON object, not {type(event).__name__}"}]
    if "run" not in event and "job" not in event and "dataset" in event:
        return [{"location": "", "message": "a DatasetEvent: the catalog stores RunEvents only"}]
    found = []
    for error in sorted(_validator().iter_errors(event), key=lambda e: list(e.absolute_path))[:MAX_ERRORS]:
        location = "/".join(str(p) for p in error.absolute_path)
        found.append({"location": location, "message": _message(error)})
    return found


def _message(error) -> str:
    """The validator's message without echoing long values from the request."""
    if error.validator in ("required", "enum", "format", "type"):
        text = error.message
        return text if len(text) <= 200 else text[:200] + "..."
    return f"fails the spec's '{error.validator}' rule"
