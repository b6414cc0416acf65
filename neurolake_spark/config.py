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
from typing import Any, ClassVar, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from neurolake_spark.errors import ConfigError

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

    ``transports`` is a list of ``{"type": ..., option: value}`` mappings, one per backend
    (``TRANSPORT_OPTIONS`` lists each type's options). A backend that fails
    ``failure_threshold`` times in a row is skipped for ``cooldown_seconds`` (its events
    go straight to the spool).
    """

    TRANSPORT_OPTIONS: ClassVar[dict[str, dict[str, bool]]] = {
        # option -> required
        "console": {"name": False},
        "file": {"name": False, "location": True},
        "http": {
            "name": False,
            "url": True,
            "endpoint": False,
            "timeout": False,
            "auth_env": False,
            "auth_file": False,
        },
        "composite": {"name": False, "transports": True},
        "catalog": {"name": False},
    }

    enabled: bool = True
    namespace: str | None = None
    transports: list[dict[str, Any]] = Field(default_factory=lambda: [{"type": "catalog"}])
    spool_dir: Path | None = None
    failure_threshold: int = Field(default=3, ge=1)
    cooldown_seconds: float = Field(default=60.0, ge=0)
    spark_listener: bool = False
    spark_listener_package: str = "io.openlineage:openlineage-spark_2.13:1.53.0"

    @field_validator("transports")
    @classmethod
    def _check_transports(cls, transports: list[dict[str, Any]]) -> list[dict[str, Any]]:
        for index, transport in enumerate(transports):
            cls._check_transport(transport, f"transport {index + 1}")
        return transports

    @classmethod
    def _check_transport(cls, transport: dict[str, Any], where: str) -> None:
        kind = transport.get("type")
        if kind not in cls.TRANSPORT_OPTIONS:
            raise ValueError(f"{where}: type must be one of {', '.join(cls.TRANSPORT_OPTIONS)}, got {kind!r}")
        options = cls.TRANSPORT_OPTIONS[kind]
        unknown = sorted(set(transport) - set(options) - {"type"})
        if unknown:
            raise ValueError(f"{where} ({kind}): unknown option(s) {', '.join(unknown)}")
        missing = [name for name, required in options.items() if required and not transport.get(name)]
        if missing:
            raise ValueError(f"{where} ({kind}): missing option(s) {', '.join(missing)}")
        timeout = transport.get("timeout")
        if timeout is not None and (
            isinstance(timeout, bool) or not isinstance(timeout, (int, float)) or timeout <= 0
        ):
            raise ValueError(
                f"{where} ({kind}): timeout must be a positive number of seconds, got {timeout!r}"
            )
        if kind == "composite":
            if not isinstance(transport["transports"], list):
                raise ValueError(f"{where} (composite): transports must be a list")
            for index, child in enumerate(transport["transports"]):
                if not isinstance(child, dict):
                    raise ValueError(f"{where}.{index + 1}: must be a mapping with a type")
                cls._check_transport(child, f"{where}.{index + 1}")


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


class GeneratorSettings(_Section):
    seed: int = 20261125
    scale: float = Field(default=1.0, gt=0)


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
    generator: GeneratorSettings = Field(default_factory=GeneratorSettings)
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

    def pipeline_definition(self):
        """The sources and tables this environment's pipeline file declares."""
        from neurolake_spark.pipeline_config import load_pipeline_definition

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
