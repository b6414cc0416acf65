"""The secrets NeuroLake generates itself, and the files ``neurolake secrets init`` creates for them.

Three secrets are random keys that only NeuroLake uses: the PII hash salt, the PII token
key and the backup key (which signs backup manifests). Each is read from an env var or a
file (:func:`~neurolake_spark.config.read_secret`); ``conf/local.yaml`` names files in
``.cache/secrets/`` so that a checkout works without exports. A file path is not a secret.

Example::

    for secret in GENERATED_SECRETS:
        path = secret.file(settings)
        if path and create_secret_file(path):
            print(f"created {path}")
"""

from __future__ import annotations

import os
import secrets
import stat
from dataclasses import dataclass
from pathlib import Path

from neurolake_spark.config import SECRETS_INIT_COMMAND, Settings, read_secret
from neurolake_spark.errors import ConfigError

SECRET_BYTES = 32


@dataclass(frozen=True)
class GeneratedSecret:
    """One generated secret: what it is and the settings that name its env var and file."""

    what: str
    file_setting: str
    env_setting: str

    def _setting(self, settings: Settings, dotted: str):
        section, name = dotted.split(".")
        return getattr(getattr(settings, section), name)

    def file(self, settings: Settings) -> Path | None:
        return self._setting(settings, self.file_setting)

    def env_var(self, settings: Settings) -> str | None:
        return self._setting(settings, self.env_setting)

    def read(self, settings: Settings, env: dict[str, str] | None = None) -> str:
        """The secret's value (from its env var, else its file); a ConfigError naming both if unset."""
        return read_secret(self.env_var(settings), self.file(settings), self.what, env, SECRETS_INIT_COMMAND)


PII_SALT = GeneratedSecret("the PII hash salt", "quality.pii_salt_file", "quality.pii_salt_env")
TOKEN_KEY = GeneratedSecret("the PII token key", "quality.token_key_file", "quality.token_key_env")
BACKUP_KEY = GeneratedSecret("the backup key", "backup.key_file", "backup.key_env")
GENERATED_SECRETS = (PII_SALT, TOKEN_KEY, BACKUP_KEY)


def _private_folder(folder: Path) -> None:
    """Create ``folder`` (mode 0700) if missing; refuse one that others can enter."""
    if not folder.exists():
        folder.mkdir(parents=True, mode=0o700)
        folder.chmod(0o700)
        return
    if not folder.is_dir():
        raise ConfigError(f"secret folder {folder} is not a folder")
    mode = stat.S_IMODE(folder.stat().st_mode)
    if mode & 0o077:
        raise ConfigError(
            f"secret folder {folder} is open to other users (mode {mode:04o}): run 'chmod 700 {folder}'"
        )


def create_secret_file(path: Path, overwrite: bool = False) -> bool:
    """Write a new random secret (hex of 32 bytes) to ``path``, mode 0600, in a 0700 folder.

    Returns False, changing nothing, when ``path`` already holds a secret and ``overwrite``
    is off. The file appears whole or not at all (written aside, then linked or renamed).
    """
    path = Path(path)
    if not overwrite and path.exists() and path.stat().st_size > 0:
        return False
    _private_folder(path.parent)
    staging = path.with_name(f".{path.name}.{secrets.token_hex(8)}.tmp")
    descriptor = os.open(staging, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        with os.fdopen(descriptor, "w", encoding="utf-8") as out:
            out.write(secrets.token_hex(SECRET_BYTES) + "\n")
            out.flush()
            os.fsync(out.fileno())
        if overwrite or path.exists():
            os.replace(staging, path)
        else:
            try:
                os.link(staging, path)
            except FileExistsError:
                return False
    finally:
        staging.unlink(missing_ok=True)
    return True
