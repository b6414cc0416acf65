"""``neurolake ncf ...``: commands on NCF files.

Each sub-command is one ``_add_<name>(commands)`` function that builds its parser and sets
``handler``; :func:`register` calls them in order, so adding a command is adding a function
to :data:`SUBCOMMANDS`.
"""

from __future__ import annotations

import argparse
import json

import ncf_datasource


def _inspect(args: argparse.Namespace) -> int:
    info = ncf_datasource.inspect(args.file)
    if args.json:
        print(json.dumps(info, indent=2, ensure_ascii=False))
    else:
        print(ncf_datasource.format_inspect(info))
    return 0


def _add_inspect(commands) -> None:
    p = commands.add_parser("inspect", help="show the footer of an NCF file: schema, tags, row groups, encodings, statistics, indexes")
    p.add_argument("file", help="path of the .ncf file")
    p.add_argument("--json", action="store_true", help="print the description as JSON")
    p.set_defaults(handler=_inspect)


SUBCOMMANDS = [_add_inspect]


def register(subparsers) -> None:
    """Add the ``ncf`` command and its sub-commands to the ``neurolake`` parser."""
    parser = subparsers.add_parser("ncf", help="work with NCF files", description="Commands on NCF files.")
    commands = parser.add_subparsers(dest="ncf_command", metavar="SUBCOMMAND", required=True)
    for add in SUBCOMMANDS:
        add(commands)
