"""The lineage transport types and their options: one typed config class per type.

``lineage.transports`` holds one of these per backend; :data:`TRANSPORT_CONFIGS` is the one
list of types, and each class holds its options with their defaults (what each backend does
with them: :mod:`~neurolake_spark.lineage.transports`). :func:`parse_transport` reads one
mapping from a settings file, with errors that name the transport and the option::

    >>> parse_transport({"type": "http", "url": "http://marquez:5000"}, "transport 1").timeout
    5
    >>> parse_transport({"type": "http", "uri": "x"}, "transport 1")
    Traceback (most recent call last):
    ValueError: transport 1 (http): unknown option(s) uri
"""

from __future__ import annotations

from typing import Any, Literal, get_args

from pydantic import BaseModel, ConfigDict, SerializeAsAny, ValidationError, field_validator


class TransportConfig(BaseModel):
    """What every transport takes: its ``type`` and an optional ``name`` (which names its spool
    queue; by default the type and a hash of the options do)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    type: str
    name: str | None = None

    def options(self) -> dict[str, Any]:
        """The options as they were given (defaults left out): what the spool keeps and the
        queue's name is derived from."""
        return self.model_dump(mode="json", exclude_unset=True)


class ConsoleTransportConfig(TransportConfig):
    """One JSON line per event on stdout."""

    type: Literal["console"]


class FileTransportConfig(TransportConfig):
    """JSON lines appended to ``location`` (relative to the settings file)."""

    type: Literal["file"]
    location: str


class HttpTransportConfig(TransportConfig):
    """POST to ``url``/``endpoint``, within ``timeout`` seconds; the bearer token (optional)
    comes from the env var ``auth_env`` or the file ``auth_file``."""

    type: Literal["http"]
    url: str
    endpoint: str = "api/v1/lineage"
    timeout: int | float = 5
    auth_env: str | None = None
    auth_file: str | None = None

    @field_validator("timeout", mode="before")
    @classmethod
    def _positive_seconds(cls, value: Any) -> Any:
        if isinstance(value, bool) or not isinstance(value, (int, float)) or value <= 0:
            raise ValueError(f"timeout must be a positive number of seconds, got {value!r}")
        return value


class CatalogTransportConfig(TransportConfig):
    """The project's catalog store (``catalog.url``)."""

    type: Literal["catalog"]


class CompositeTransportConfig(TransportConfig):
    """Several transports under one entry; flattened, so each keeps its own spool."""

    type: Literal["composite"]
    transports: list[SerializeAsAny[TransportConfig]]


TRANSPORT_CONFIGS: dict[str, type[TransportConfig]] = {
    get_args(config.model_fields["type"].annotation)[0]: config
    for config in (
        ConsoleTransportConfig,
        FileTransportConfig,
        HttpTransportConfig,
        CompositeTransportConfig,
        CatalogTransportConfig,
    )
}
"""Every transport type, by the name ``type`` gives it."""


def parse_transport(raw: Any, where: str) -> TransportConfig:
    """The typed config of one transport mapping; ``where`` (``transport 1``) starts every error.

    Raises ``ValueError`` naming the transport and the unknown, missing or bad option."""
    if isinstance(raw, TransportConfig):
        return raw
    if not isinstance(raw, dict):
        raise ValueError(f"{where}: must be a mapping with a type")
    kind = raw.get("type")
    config = TRANSPORT_CONFIGS.get(kind) if isinstance(kind, str) else None
    if config is None:
        raise ValueError(f"{where}: type must be one of {', '.join(TRANSPORT_CONFIGS)}, got {kind!r}")
    unknown = sorted(set(raw) - set(config.model_fields))
    if unknown:
        raise ValueError(f"{where} ({kind}): unknown option(s) {', '.join(unknown)}")
    missing = [
        name for name, field in config.model_fields.items() if field.is_required() and not raw.get(name)
    ]
    if missing:
        raise ValueError(f"{where} ({kind}): missing option(s) {', '.join(missing)}")
    if config is CompositeTransportConfig:
        if not isinstance(raw["transports"], list):
            raise ValueError(f"{where} (composite): transports must be a list")
        members = [parse_transport(member, f"{where}.{i}") for i, member in enumerate(raw["transports"], 1)]
        raw = {**raw, "transports": members}
    try:
        return config.model_validate(raw)
    except ValidationError as exc:
        error = exc.errors()[0]
        if error["type"] == "value_error":  # a validator's own words, e.g. the timeout's
            problem = str(error["ctx"]["error"])
        else:
            problem = f"{'.'.join(str(part) for part in error['loc'])}: {error['msg']}"
        raise ValueError(f"{where} ({kind}): {problem}") from None


def leaf_transports(configs: list[TransportConfig]) -> list[TransportConfig]:
    """The transports with each ``composite`` replaced by its members."""
    leaves: list[TransportConfig] = []
    for config in configs:
        if isinstance(config, CompositeTransportConfig):
            leaves.extend(leaf_transports(config.transports))
        else:
            leaves.append(config)
    return leaves
