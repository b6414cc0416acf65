"""The secret files the settings name: `neurolake secrets init` creates them, a missing one is one line."""

from __future__ import annotations

import shutil
import stat
from pathlib import Path

import pytest

from neurolake_spark.cli import main
from neurolake_spark.config import load_settings
from neurolake_spark.errors import ConfigError
from neurolake_spark.quality.pii import SecretSource
from neurolake_spark.secret_files import BACKUP_KEY, GENERATED_SECRETS, create_secret_file

ROOT = Path(__file__).resolve().parents[2]


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


@pytest.fixture
def conf_copy(tmp_path) -> Path:
    """conf/ copied into a fresh folder: its secret files (../.cache/secrets/...) do not exist yet."""
    shutil.copytree(ROOT / "conf", tmp_path / "conf")
    return tmp_path / "conf" / "local.yaml"


def test_local_settings_name_the_secret_files_relative_to_the_settings_file(conf_copy):
    settings = load_settings(conf_copy, env={})
    secrets_dir = conf_copy.parent.parent / ".cache" / "secrets"
    assert [secret.file(settings) for secret in GENERATED_SECRETS] == [
        secrets_dir / "pii_salt",
        secrets_dir / "token_key",
        secrets_dir / "backup_key",
    ]


def test_a_missing_secret_file_is_one_line_naming_the_command_that_creates_it(conf_copy):
    settings = load_settings(conf_copy, env={})
    with pytest.raises(ConfigError) as missing:
        SecretSource(settings.quality, env={}).token_key()
    message = str(missing.value)
    assert "\n" not in message
    assert message.startswith("the PII token key is not set: secret file ")
    assert "token_key does not exist; create it with 'neurolake secrets init'" in message
    assert "or set env var NEUROLAKE_TOKEN_KEY" in message
    with pytest.raises(ConfigError, match="the backup key is not set: .*'neurolake secrets init'"):
        BACKUP_KEY.read(settings, env={})


def test_secrets_init_creates_private_random_files_and_never_overwrites_unless_told(conf_copy, capsys):
    assert main(["secrets", "init", "--conf-file", str(conf_copy)]) == 0
    out = capsys.readouterr().out
    settings = load_settings(conf_copy, env={})
    files = [secret.file(settings) for secret in GENERATED_SECRETS]
    assert out.count("created  ") == 3 and all(str(path) in out for path in files)
    assert _mode(files[0].parent) == 0o700
    values = [path.read_text() for path in files]
    for path, value in zip(files, values):
        assert _mode(path) == 0o600
        assert len(value.strip()) == 64 and int(value, 16) >= 0
    assert len(set(values)) == 3
    assert SecretSource(settings.quality, env={}).salt() == values[0].strip()
    assert BACKUP_KEY.read(settings, env={}) == values[2].strip()
    assert sorted(p.name for p in files[0].parent.iterdir()) == ["backup_key", "pii_salt", "token_key"]

    assert main(["secrets", "init", "--conf-file", str(conf_copy)]) == 0
    assert capsys.readouterr().out.count("kept     ") == 3
    assert [path.read_text() for path in files] == values

    files[1].write_text("")  # an empty file holds no secret: it is filled, the others are kept
    assert main(["secrets", "init", "--conf-file", str(conf_copy)]) == 0
    assert files[1].read_text() not in ("", values[1]) and files[0].read_text() == values[0]
    capsys.readouterr()

    assert main(["secrets", "init", "--overwrite", "--conf-file", str(conf_copy)]) == 0
    assert capsys.readouterr().out.count("created  ") == 3
    assert all(path.read_text() != value for path, value in zip(files, values))
    assert all(_mode(path) == 0o600 for path in files)


def test_create_secret_file_refuses_a_folder_others_can_enter(tmp_path):
    open_folder = tmp_path / "open"
    open_folder.mkdir()
    open_folder.chmod(0o755)
    with pytest.raises(ConfigError, match=r"open to other users \(mode 0755\): run 'chmod 700 "):
        create_secret_file(open_folder / "pii_salt")
    assert not (open_folder / "pii_salt").exists()
    nested = tmp_path / "a" / "b" / "secrets" / "key"
    assert create_secret_file(nested) and _mode(nested.parent) == 0o700


def test_secrets_init_with_no_secret_file_settings_is_an_error(tmp_path, capsys):
    conf = tmp_path / "bare.yaml"
    conf.write_text("storage:\n  warehouse: wh\n")
    assert main(["secrets", "init", "--conf-file", str(conf)]) == 2
    assert "names no secret file (quality.pii_salt_file" in capsys.readouterr().err


def test_an_env_var_still_wins_over_the_file(conf_copy):
    settings = load_settings(conf_copy, env={})
    assert SecretSource(settings.quality, env={"NEUROLAKE_PII_SALT": "from-env"}).salt() == "from-env"
    assert BACKUP_KEY.read(settings, env={"NEUROLAKE_BACKUP_KEY": "k"}) == "k"
