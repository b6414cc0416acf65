"""Options every command that touches an environment shares: ``--conf-file`` and ``--set``."""

from __future__ import annotations

import argparse

from neurolake_spark.lakehouse import Lakehouse


def add_environment_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--conf-file",
        "-c",
        metavar="FILE",
        help="settings file (default: $NEUROLAKE_CONF or conf/local.yaml)",
    )
    parser.add_argument(
        "--set",
        dest="overrides",
        action="append",
        default=[],
        metavar="SECTION.KEY=VALUE",
        help="override one setting, e.g. --set spark.master=local[4] (repeatable)",
    )


def open_lakehouse(args: argparse.Namespace) -> Lakehouse:
    """The Lakehouse the command's ``--conf-file`` and ``--set`` options describe."""
    return Lakehouse.open(args.conf_file, overrides=args.overrides)
