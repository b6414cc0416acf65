"""``neurolake secrets init``: create the random secrets NeuroLake generates itself.

    neurolake secrets init                      # the files conf/local.yaml names, in .cache/secrets/
    neurolake secrets init --conf-file conf/cluster.yaml
    neurolake secrets init --overwrite          # new values: old hashes, tokens and backups stop matching

Existing secret files are kept unless ``--overwrite`` is given. No Spark is started.
"""

from __future__ import annotations

import argparse

from neurolake_spark.cli.common import add_environment_options
from neurolake_spark.errors import ConfigError


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add ``secrets init`` to the ``neurolake`` parser."""
    group = subparsers.add_parser(
        "secrets", help="create the local secret files (PII salt, token key, backup key)"
    )
    commands = group.add_subparsers(dest="secrets_command", metavar="COMMAND", required=True)
    init = commands.add_parser(
        "init",
        help="create each secret file the settings name that does not exist yet (mode 0600, folder 0700)",
        description="Create a random secret in each file the settings name (quality.pii_salt_file, "
        "quality.token_key_file, backup.key_file) unless it already exists.",
    )
    add_environment_options(init)
    init.add_argument(
        "--overwrite",
        action="store_true",
        help="replace existing secrets too: hashes and tokens of existing tables and the signatures "
        "of existing backups no longer match the new values",
    )
    init.set_defaults(handler=_init)


def _init(args: argparse.Namespace) -> int:
    from neurolake_spark.config import load_settings
    from neurolake_spark.secret_files import GENERATED_SECRETS, create_secret_file

    settings = load_settings(args.conf_file, args.overrides)
    named = [(secret, secret.file(settings)) for secret in GENERATED_SECRETS]
    if not any(path for _, path in named):
        settings_names = ", ".join(secret.file_setting for secret in GENERATED_SECRETS)
        raise ConfigError(
            f"{settings.source_file} names no secret file ({settings_names}); nothing to create"
        )
    for secret, path in named:
        if path is None:
            print(f"skipped  {secret.what}: {secret.file_setting} is not set (read from env var)")
        elif create_secret_file(path, overwrite=args.overwrite):
            print(f"created  {path} ({secret.what})")
        else:
            print(f"kept     {path} ({secret.what}; --overwrite replaces it)")
    return 0
