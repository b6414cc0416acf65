"""After setup, a new shell runs the README's commands: no NEUROLAKE_* variable is needed.

The secrets come from the files ``conf/local.yaml`` names (``.cache/secrets/``), which
``neurolake secrets init`` creates, as ``scripts/setup.sh`` runs it (it keeps existing
ones). Only the warehouse is moved to a temporary folder, with ``--set`` as the README
shows. A small night (scale 0.02) keeps the test short.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

from neurolake_spark.backup import backup_key_id
from neurolake_spark.config import load_settings
from neurolake_spark.secret_files import BACKUP_KEY
from tests.e2e.cluster import LOCAL_CONF, ROOT, VENV_BIN

DAY = "2026-11-24"
NOTEBOOK = """
import sys
from neurolake_spark import Lakehouse

lh = Lakehouse.open("conf/local.yaml", overrides={"storage.warehouse": sys.argv[1]})
customers = lh.table("silver.customers")
row = customers.where("email IS NOT NULL AND name IS NOT NULL").select("email", "name").first()
print(customers.count(), row.email, row.name.replace("\\r\\n", ""))
"""


def _clean_env() -> dict[str, str]:
    """The environment of a new shell: nothing exported by the setup script."""
    return {k: v for k, v in os.environ.items() if not k.startswith("NEUROLAKE")}


def neurolake(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess:
    return subprocess.run(
        [str(VENV_BIN / "neurolake"), *args], cwd=ROOT, env=env, capture_output=True, text=True, timeout=900
    )


def test_readme_commands_run_in_a_new_shell_after_setup(tmp_path):
    env = _clean_env()
    init = neurolake("secrets", "init", env=env)  # what scripts/setup.sh runs; keeps existing secrets
    assert init.returncode == 0, init.stderr
    warehouse = ["--set", f"storage.warehouse={tmp_path / 'warehouse'}"]
    for command in (
        ["generate", "--date", DAY, "--scale", "0.02"],
        ["step", "ingest", "--date", DAY],
        ["step", "silver", "--date", DAY],  # the gated step: masks PII with the salt and the token key
        ["backup", "--all", "--to", str(tmp_path / "backup")],
        ["restore", str(tmp_path / "backup"), "--to", str(tmp_path / "restored")],  # checks the signature
    ):
        done = neurolake(*command, *warehouse, env=env)
        assert done.returncode == 0, f"{command}: {done.stderr[-4000:]}"
        assert "Traceback" not in done.stderr

    notebook = subprocess.run(
        [sys.executable, "-c", NOTEBOOK, str(tmp_path / "warehouse")],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=900,
    )
    assert notebook.returncode == 0, notebook.stderr[-4000:]
    count, email, name = notebook.stdout.split()
    assert int(count) > 0 and len(email) == 64 and int(email, 16) >= 0 and len(name) > 20

    settings = load_settings(LOCAL_CONF, env={})
    manifest = json.loads((tmp_path / "backup" / "manifest.json").read_text())
    assert manifest["key_id"] == backup_key_id(BACKUP_KEY.read(settings, env={}))


def test_a_missing_secret_file_is_one_line_that_names_the_command_that_creates_it(tmp_path):
    shutil.copytree(ROOT / "conf", tmp_path / "conf")  # its secret files (../.cache/secrets) do not exist
    conf = ["--conf-file", str(tmp_path / "conf" / "local.yaml")]
    warehouse = ["--set", f"storage.warehouse={tmp_path / 'warehouse'}"]
    env = _clean_env()
    missing = neurolake("backup", "--all", "--to", str(tmp_path / "backup"), *conf, *warehouse, env=env)
    assert missing.returncode != 0 and "Traceback" not in missing.stderr
    assert missing.stderr.strip().splitlines() == [
        f"neurolake: error: the backup key is not set: secret file {tmp_path}/.cache/secrets/backup_key "
        "does not exist; create it with 'neurolake secrets init', or set env var NEUROLAKE_BACKUP_KEY"
    ]
    init = neurolake("secrets", "init", *conf, env=env)
    assert init.returncode == 0 and init.stdout.count("created") == 3, init.stdout + init.stderr
    assert oct((tmp_path / ".cache" / "secrets").stat().st_mode & 0o777) == "0o700"
    assert all(
        oct(path.stat().st_mode & 0o777) == "0o600" for path in (tmp_path / ".cache" / "secrets").iterdir()
    )
    assert not Path(tmp_path / "backup").exists()
