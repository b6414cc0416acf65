"""Typed settings: ``conf/*.yaml``, then ``NEUROLAKE__SECTION__KEY`` env vars, then CLI ``--set``.

Example::

    settings = load_settings("conf/local.yaml", overrides=["spark.master=local[4]"])
    settings.storage.warehouse            # an absolute Path
    settings.pipeline_definition().sources["orders"].key

Relative paths in a settings file are relative to that file's folder; relative paths
given by env vars or ``--set`` are relative to the current directory. An unknown key or
a wrong type is a :class:`~neurolake_spark.errors.ConfigError` naming the key and where
it came from. Secrets are never settings: a setting names the env var or file that
holds a secret (see :func:`read_secret`).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    SerializeAsAny,
    ValidationError,
    field_validator,
    model_validator,
)

from neurolake_spark.errors import ConfigError
from neurolake_spark.lineage.transport_config import CatalogTransportConfig, TransportConfig, parse_transport
from neurolake_spark.pipeline_config import PipelineDefinition, load_pipeline_definition

ENV_PREFIX = "NEUROLAKE__"
DEFAULT_CONF_ENV = "NEUROLAKE_CONF"
DELTA_PACKAGE = "io.delta:delta-spark_4.2_2.13:4.4.0"


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", validate_assignment=True)


class SparkSettings(_Section):
    master: str = "local[2]"
    app_name: str = "neurolake"
    shuffle_partitions: int = Field(default=8, ge=1)
    driver_memory: str = "2g"
    log_level: Literal["ERROR", "WARN", "INFO", "DEBUG"] = "ERROR"
    conf: dict[str, str] = Field(default_factory=dict)

    @field_validator("conf", mode="before")
    @classmethod
    def _stringify(cls, value: Any) -> Any:
        if isinstance(value, dict):
            return {str(k): str(v).lower() if isinstance(v, bool) else str(v) for k, v in value.items()}
        return value


class JvmSettings(_Section):
    packages: list[str] = Field(default_factory=lambda: [DELTA_PACKAGE])
    jars_dir: Path = Path("~/.cache/neurolake/jars")
    extra_packages: list[str] = Field(default_factory=list)


class StorageSettings(_Section):
    warehouse: Path = Path("../warehouse")
    raw: Path | None = None


class CatalogSettings(_Section):
    url: str | None = None


class LineageSettings(_Section):
    """OpenLineage events of every run; see ``docs/lineage.md``.

    ``transports`` is a list of ``{"type": ..., option: value}`` mappings, one per backend,
    read into the typed config of each type (:mod:`~neurolake_spark.lineage.transport_config`
    lists the types and their options). A backend that fails ``failure_threshold`` times in
    a row is skipped for ``cooldown_seconds`` (its events go straight to the spool).
    """

    enabled: bool = True
    namespace: str | None = None
    transports: list[SerializeAsAny[TransportConfig]] = Field(
        default_factory=lambda: [CatalogTransportConfig(type="catalog")]
    )
    spool_dir: Path | None = None
    failure_threshold: int = Field(default=3, ge=1)
    cooldown_seconds: float = Field(default=60.0, ge=0)
    spark_listener: bool = False
    spark_listener_package: str = "io.openlineage:openlineage-spark_2.13:1.53.0"

    @field_validator("transports", mode="before")
    @classmethod
    def _parse_transports(cls, transports: Any) -> Any:
        if not isinstance(transports, list):
            return transports
        return [
            parse_transport(transport, f"transport {index}") for index, transport in enumerate(transports, 1)
        ]


class QualitySettings(_Section):
    enabled: bool = True
    suites: Path = Path("quality")
    pii_policies: Path = Path("pii.yaml")
    pii_salt_env: str = "NEUROLAKE_PII_SALT"
    pii_salt_file: Path | None = None
    token_key_env: str = "NEUROLAKE_TOKEN_KEY"
    token_key_file: Path | None = None


class BackupSettings(_Section):
    """The key that signs backup manifests (HMAC-SHA256): a secret, from ``key_env`` or ``key_file``."""

    key_env: str = "NEUROLAKE_BACKUP_KEY"
    key_file: Path | None = None


class MetricsSettings(_Section):
    enabled: bool = True
    pushgateway_url: str | None = None
    pushgateway_auth_env: str | None = None
    textfile_dir: Path | None = None


class MaintenanceSettings(_Section):
    optimize: bool = True
    vacuum: bool = True
    vacuum_retention_hours: int = Field(default=168, ge=0)


class LockSettings(_Section):
    """Run locks (``neurolake_spark.locks``): a holder refreshes its heartbeat every
    ``heartbeat_seconds``; a lock whose heartbeat is older than ``stale_after_seconds`` (or whose
    process is gone, on the same host) can be taken over."""

    dir: Path | None = None
    stale_after_seconds: float = Field(default=300.0, gt=0)
    heartbeat_seconds: float = Field(default=15.0, gt=0)

    @model_validator(mode="after")
    def _heartbeat_within_timeout(self) -> LockSettings:
        if self.heartbeat_seconds >= self.stale_after_seconds:
            raise ValueError("locks.heartbeat_seconds must be shorter than locks.stale_after_seconds")
        return self


class GeneratorSettings(_Section):
    seed: int = 20261125
    scale: float = Field(default=1.0, gt=0)


class RateLimitSettings(_Section):
    """A token bucket: ``burst`` requests at once, refilled at ``per_second``."""

    burst: int = Field(default=60, ge=1)
    per_second: float = Field(default=20.0, gt=0)


class OidcSettings(_Section):
    """OIDC bearer tokens (JWTs): on when ``issuer`` is set; keys from ``jwks_file`` or ``jwks_url``."""

    issuer: str | None = None
    audience: str | None = None
    jwks_file: Path | None = None
    jwks_url: str | None = None
    algorithms: list[str] = Field(default_factory=lambda: ["RS256", "ES256"])
    role_claim: str = "neurolake_role"
    tenant_claim: str = "neurolake_tenant"
    grants_claim: str = "neurolake_grants"
    leeway_seconds: int = Field(default=30, ge=0)


class TenantSettings(_Section):
    """What one tenant sees: whole namespaces and/or table name patterns (``silver.*``, ``*``);
    optionally its own statement limits (default: the service's ``statement_concurrency`` and
    ``statement_queue``)."""

    namespaces: list[str] = Field(default_factory=list)
    tables: list[str] = Field(default_factory=list)
    statement_concurrency: int | None = Field(default=None, ge=1)
    statement_queue: int | None = Field(default=None, ge=0)


class ServiceSettings(_Section):
    """``neurolake serve``: bind, auth, tenants, limits, tracing; see ``docs/service.md``."""

    host: str = "127.0.0.1"
    port: int = Field(default=8000, ge=0, le=65535)
    workers: int = Field(default=1, ge=1)
    anonymous_ready: bool = True
    anonymous_metrics: bool = True
    tenants: dict[str, TenantSettings] = Field(
        default_factory=lambda: {"default": TenantSettings(tables=["*"])}
    )
    oidc: OidcSettings = Field(default_factory=OidcSettings)
    rate_limit_enabled: bool = True
    rate_limit_per_key: RateLimitSettings = Field(default_factory=RateLimitSettings)
    rate_limit_per_address: RateLimitSettings = Field(
        default_factory=lambda: RateLimitSettings(burst=120, per_second=40.0)
    )
    cors_origins: list[str] = Field(default_factory=list)
    trusted_hosts: list[str] = Field(default_factory=lambda: ["127.0.0.1", "localhost", "::1"])
    trusted_proxies: list[str] = Field(default_factory=list)
    max_body_bytes: int = Field(default=1_048_576, ge=1024)
    bulk_max_bytes: int = Field(default=16_777_216, ge=1024)
    upload_max_bytes: int = Field(default=268_435_456, ge=1024)
    behind_tls: bool = False
    session_hours: float = Field(default=8.0, gt=0)
    tracing_exporter: Literal["none", "console", "otlp"] = "none"
    otlp_endpoint: str | None = None
    access_log: bool = True
    catalog_timeout_seconds: float = Field(default=5.0, gt=0)
    breaker_failures: int = Field(default=3, ge=1)
    breaker_cooldown_seconds: float = Field(default=15.0, ge=0)
    state_dir: Path | None = None
    ready_max_spooled_events: int = Field(default=1000, ge=0)
    shutdown_grace_seconds: float = Field(default=30.0, ge=0)
    graph_node_limit: int = Field(default=500, ge=2)
    max_page_size: int = Field(default=500, ge=1)
    spark_remote: str | None = Field(default=None, pattern=r"^sc://[^\s]+$")
    statement_concurrency: int = Field(default=4, ge=1)
    statement_queue: int = Field(default=16, ge=0)
    statement_chunk_rows: int = Field(default=10_000, ge=1)
    statement_row_limit: int = Field(default=1_000_000, ge=1)
    statement_byte_limit: int = Field(default=256 * 1024 * 1024, ge=1024)
    statement_retention_seconds: float = Field(default=3600.0, gt=0)
    preview_max_rows: int = Field(default=1000, ge=1)

    @field_validator("tenants")
    @classmethod
    def _check_tenants(cls, tenants: dict[str, TenantSettings]) -> dict[str, TenantSettings]:
        if not tenants:
            raise ValueError("declare at least one tenant")
        for name in tenants:
            if not name or len(name) > 100 or not name.replace("-", "").replace("_", "").isalnum():
                raise ValueError(f"tenant name {name!r}: use letters, digits, '-' and '_' (at most 100)")
        return tenants


class Settings(_Section):
    """All settings of one environment; built by :func:`load_settings`."""

    spark: SparkSettings = Field(default_factory=SparkSettings)
    jvm: JvmSettings = Field(default_factory=JvmSettings)
    storage: StorageSettings = Field(default_factory=StorageSettings)
    catalog: CatalogSettings = Field(default_factory=CatalogSettings)
    lineage: LineageSettings = Field(default_factory=LineageSettings)
    quality: QualitySettings = Field(default_factory=QualitySettings)
    backup: BackupSettings = Field(default_factory=BackupSettings)
    metrics: MetricsSettings = Field(default_factory=MetricsSettings)
    maintenance: MaintenanceSettings = Field(default_factory=MaintenanceSettings)
    locks: LockSettings = Field(default_factory=LockSettings)
    generator: GeneratorSettings = Field(default_factory=GeneratorSettings)
    service: ServiceSettings = Field(default_factory=ServiceSettings)
    pipeline: Path = Path("pipeline.yaml")
    source_file: Path | None = None

    @property
    def warehouse(self) -> Path:
        return self.storage.warehouse

    @property
    def raw_dir(self) -> Path:
        return self.storage.raw or self.storage.warehouse / "raw"

    @property
    def catalog_url(self) -> str:
        return self.catalog.url or f"sqlite:///{self.storage.warehouse / 'catalog.db'}"

    @property
    def lineage_namespace(self) -> str:
        return self.lineage.namespace or self.storage.warehouse.as_uri()

    @property
    def lineage_spool_dir(self) -> Path:
        return self.lineage.spool_dir or self.storage.warehouse / "_lineage_spool"

    @property
    def metrics_textfile_dir(self) -> Path:
        return self.metrics.textfile_dir or self.storage.warehouse / "_metrics"

    @property
    def locks_dir(self) -> Path:
        return self.locks.dir or self.storage.warehouse / "_locks"

    def pipeline_definition(self) -> PipelineDefinition:
        """The sources and tables this environment's pipeline file declares."""
        return load_pipeline_definition(self.pipeline)


def _path_fields(model: type[BaseModel], prefix: str = "") -> list[str]:
    """Dotted names of every Path-typed field, so relative paths can be anchored."""
    names = []
    for name, field in model.model_fields.items():
        annotation = field.annotation
        if isinstance(annotation, type) and issubclass(annotation, BaseModel):
            names.extend(_path_fields(annotation, f"{prefix}{name}."))
        elif Path in getattr(annotation, "__args__", ()) or annotation is Path:
            names.append(f"{prefix}{name}")
    return names


PATH_FIELDS = _path_fields(Settings)


def _parse_scalar(text: str) -> Any:
    try:
        return yaml.safe_load(text) if text.strip() else ""
    except yaml.YAMLError:
        return text


def _set_dotted(tree: dict, dotted: str, value: Any, origin: str) -> None:
    parts = [p for p in dotted.split(".") if p]
    if not parts:
        raise ConfigError(f"{origin}: empty setting name")
    node = tree
    for part in parts[:-1]:
        child = node.setdefault(part, {})
        if not isinstance(child, dict):
            raise ConfigError(f"{origin}: '{'.'.join(parts)}' goes below '{part}', which is not a section")
        node = child
    node[parts[-1]] = value


def _anchor_override(tree: dict, dotted: str) -> None:
    """A path given by an env var or ``--set`` is relative to the current directory."""
    *sections, name = dotted.split(".")
    node = tree
    for section in sections:
        node = node[section]
    if node.get(name) not in (None, ""):
        node[name] = str(Path(str(node[name])).expanduser().resolve())


def _read_yaml(path: Path) -> dict:
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError(f"settings file not found: {path}") from None
    except OSError as exc:
        raise ConfigError(f"cannot read settings file {path}: {exc.strerror}") from None
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" line {mark.line + 1}" if mark else ""
        raise ConfigError(f"{path}:{where} is not valid YAML ({getattr(exc, 'problem', exc)})") from None
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: the top level must be a mapping of sections, not {type(data).__name__}")
    return data


def _origin_of(key: str, origins: dict[str, str], default: str) -> str:
    best = default
    for dotted, origin in origins.items():
        if key == dotted or key.startswith(dotted + "."):
            best = origin
    return best


def load_settings(
    path: str | os.PathLike | None = None,
    overrides: list[str] | dict[str, Any] | None = None,
    env: dict[str, str] | None = None,
) -> Settings:
    """Load one environment's settings.

    ``path`` defaults to ``$NEUROLAKE_CONF`` or ``conf/local.yaml``. ``overrides`` are
    ``"section.key=value"`` strings (the CLI's ``--set``) or a ``{dotted: value}`` dict;
    they win over ``NEUROLAKE__SECTION__KEY`` env vars, which win over the file.
    """
    env = dict(os.environ if env is None else env)
    conf_path = Path(path or env.get(DEFAULT_CONF_ENV) or "conf/local.yaml").expanduser().resolve()
    tree = _read_yaml(conf_path)
    origins: dict[str, str] = {}

    layered: list[tuple[str, Any, str]] = []
    for name, value in sorted(env.items()):
        if not name.startswith(ENV_PREFIX):
            continue
        dotted = ".".join(part.lower() for part in name[len(ENV_PREFIX) :].split("__"))
        layered.append((dotted, _parse_scalar(value), f"env var {name}"))
    if isinstance(overrides, dict):
        layered.extend((k, v, f"override {k}") for k, v in overrides.items())
    else:
        for item in overrides or []:
            if "=" not in item:
                raise ConfigError(f"--set {item!r}: expected SECTION.KEY=VALUE")
            key, value = item.split("=", 1)
            layered.append((key.strip(), _parse_scalar(value), f"--set {key.strip()}"))

    for dotted, value, origin in layered:
        _set_dotted(tree, dotted, value, origin)
        origins[dotted] = origin
        if dotted in PATH_FIELDS:
            _anchor_override(tree, dotted)

    tree["source_file"] = str(conf_path)
    try:
        settings = Settings.model_validate(tree)
    except ValidationError as exc:
        error = exc.errors()[0]
        key = ".".join(str(p) for p in error["loc"])
        origin = _origin_of(key, origins, str(conf_path))
        if error["type"] == "extra_forbidden":
            raise ConfigError(f"{origin}: unknown setting '{key}'") from None
        got = error.get("input")
        shown = "" if isinstance(got, dict) else f", got {got!r}"
        raise ConfigError(f"{origin}: setting '{key}': {error['msg'].lower()}{shown}") from None
    _anchor_to(settings, conf_path.parent)
    return settings


def _anchor_to(settings: Settings, base: Path) -> None:
    """Make every relative path setting (from the file or a default) relative to ``base``."""
    for dotted in PATH_FIELDS:
        *sections, name = dotted.split(".")
        owner = settings
        for section in sections:
            owner = getattr(owner, section)
        value = getattr(owner, name)
        if value is not None and not value.expanduser().is_absolute():
            setattr(owner, name, (base / value).resolve())
        elif value is not None:
            setattr(owner, name, value.expanduser())


SECRETS_INIT_COMMAND = "neurolake secrets init"
"""The command that creates the secret files the settings name (see :mod:`neurolake_spark.secret_files`)."""


def read_secret(
    env_var: str | None,
    file: Path | None,
    what: str,
    env: dict[str, str] | None = None,
    created_by: str | None = None,
) -> str:
    """Return a secret from ``env_var`` or ``file``; there is never a default.

    Raises :class:`ConfigError` naming where the secret was expected, never its value;
    ``created_by`` is the command that creates a missing ``file`` (named in the error).
    """
    env = os.environ if env is None else env
    if env_var and env.get(env_var):
        return env[env_var]
    if file:
        try:
            value = Path(file).read_text(encoding="utf-8").strip()
        except FileNotFoundError:
            if not created_by:
                raise ConfigError(f"{what}: cannot read secret file {file}") from None
            alternative = f", or set env var {env_var}" if env_var else ""
            raise ConfigError(
                f"{what} is not set: secret file {file} does not exist; create it with '{created_by}'"
                f"{alternative}"
            ) from None
        except OSError:
            raise ConfigError(f"{what}: cannot read secret file {file}") from None
        if value:
            return value
    places = " or ".join(
        p for p in [f"env var {env_var}" if env_var else "", f"file {file}" if file else ""] if p
    )
    raise ConfigError(f"{what} is not set: provide it in {places or 'an env var or a file'}")
