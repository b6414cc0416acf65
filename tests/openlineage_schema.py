"""Validate OpenLineage events against the official JSON schema, offline.

``validate_event(event_dict)`` raises ``jsonschema.ValidationError`` (or
``AssertionError`` for a facet in the wrong place) unless the event is valid:

- the event against ``OpenLineage.json`` (spec 2-0-2), with ``uuid``, ``date-time``
  and ``uri`` formats checked;
- every standard facet against its own schema in ``facets/``, chosen by its key and by
  where it sits (run, job, dataset, input or output facets). Custom facets (keys no
  spec file defines, e.g. ``neurolake_code``) only need to be valid base facets.

The spec is test data inside the repository (``tests/openlineage_spec/``, with its
licence and checksums); ``$ref``s resolve by their ``$id`` to those local copies, so
nothing is fetched and nothing outside the checkout is read.
"""

from __future__ import annotations

import hashlib
import json
import re
from functools import cache
from pathlib import Path
from typing import Any

from jsonschema import Draft202012Validator, FormatChecker
from referencing import Registry, Resource

SPEC_DIR = Path(__file__).resolve().parent / "openlineage_spec"

_DATE_TIME = re.compile(r"^\d{4}-\d{2}-\d{2}[Tt]\d{2}:\d{2}:\d{2}(\.\d+)?([Zz]|[+-]\d{2}:\d{2})$")
_URI = re.compile(r"^[A-Za-z][A-Za-z0-9+.\-]*:[^\s]*$")
_CONTAINERS = {
    "run": "RunFacet",
    "job": "JobFacet",
    "facets": "DatasetFacet",
    "inputFacets": "InputDatasetFacet",
    "outputFacets": "OutputDatasetFacet",
}


def _format_checker() -> FormatChecker:
    checker = FormatChecker(["uuid"])
    checker.checks("date-time")(lambda value: not isinstance(value, str) or bool(_DATE_TIME.match(value)))
    checker.checks("uri")(lambda value: not isinstance(value, str) or bool(_URI.match(value)))
    return checker


def _verified_spec_files() -> list[Path]:
    """The spec's files, checked against ``SHA256SUMS``; a missing or edited file fails."""
    sums = SPEC_DIR / "SHA256SUMS"
    if not sums.is_file():
        raise FileNotFoundError(
            f"the OpenLineage spec is missing: expected {sums} (see tests/openlineage_spec/README.md)"
        )
    files = []
    for line in sums.read_text().splitlines():
        digest, name = line.split(maxsplit=1)
        path = SPEC_DIR / name
        if not path.is_file():
            raise FileNotFoundError(f"the OpenLineage spec is incomplete: {path} is missing")
        if hashlib.sha256(path.read_bytes()).hexdigest() != digest:
            raise AssertionError(f"{path} does not match its checksum in {sums}: restore the official file")
        files.append(path)
    return files


@cache
def _schemas() -> tuple[Draft202012Validator, dict[tuple[str, str], Draft202012Validator]]:
    """The event validator and one validator per (facet kind, facet key)."""
    files = _verified_spec_files()
    event_file = SPEC_DIR / "OpenLineage.json"
    documents = [
        json.loads(p.read_text()) for p in [event_file, *sorted(p for p in files if p != event_file)]
    ]
    registry = Registry().with_resources((doc["$id"], Resource.from_contents(doc)) for doc in documents)
    checker = _format_checker()
    event_validator = Draft202012Validator(documents[0], registry=registry, format_checker=checker)
    facet_validators = {}
    for doc in documents[1:]:
        validator = Draft202012Validator(doc, registry=registry, format_checker=checker)
        for key, prop in doc.get("properties", {}).items():
            for reference in [prop] if "$ref" in prop else prop.get("anyOf", []):
                definition = doc["$defs"][reference["$ref"].rsplit("/", 1)[-1]]
                bases = [part.get("$ref", "") for part in definition.get("allOf", [])]
                for base in bases:
                    if "OpenLineage.json#/$defs/" in base:
                        facet_validators[(base.rsplit("/", 1)[-1], key)] = validator
    return event_validator, facet_validators


def _facet_groups(event: dict[str, Any]):
    yield "run", event.get("run", {}).get("facets") or {}
    yield "job", event.get("job", {}).get("facets") or {}
    for dataset in (event.get("inputs") or []) + (event.get("outputs") or []):
        for container in ("facets", "inputFacets", "outputFacets"):
            yield container, dataset.get(container) or {}


def validate_event(event: dict[str, Any]) -> None:
    """Raise unless ``event`` (a JSON dict) is a valid OpenLineage event with valid facets."""
    event_validator, facet_validators = _schemas()
    event_validator.validate(event)
    known_keys = {key for _, key in facet_validators}
    for container, facets in _facet_groups(event):
        kind = _CONTAINERS[container]
        for key, facet in facets.items():
            validator = facet_validators.get((kind, key))
            if validator is not None:
                validator.validate({key: facet})
            elif key in known_keys:
                kinds = sorted(k for k, name in facet_validators if name == key)
                raise AssertionError(
                    f"facet {key!r} is a {'/'.join(kinds)}, it cannot be in {container} ({kind})"
                )
