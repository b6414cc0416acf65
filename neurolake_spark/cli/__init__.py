"""The ``neurolake`` command.

Each area of the product adds its own sub-commands from a module in this package that
defines ``register(subparsers)``; :data:`COMMAND_MODULES` lists them. A command handler
takes the parsed ``argparse.Namespace`` and returns the process exit code.

Errors the project raises on purpose (:class:`~neurolake_spark.errors.NeuroLakeError`,
:class:`ncf_datasource.NCFError`) are printed as one line on stderr, never as a traceback,
and end the process with the exit code :data:`EXIT_CODES` gives their class.
"""

from __future__ import annotations

import argparse
import importlib
import os
import sys

from ncf_datasource import NCFCorruptFileError, NCFError, NCFVersionError
from ncf_datasource.table import NotATableError
from neurolake_spark.catalog.errors import CatalogError
from neurolake_spark.errors import (
    BadInputError,
    BusyError,
    ConfigError,
    EnvironmentSetupError,
    NeuroLakeError,
    TableNameError,
)
from neurolake_spark.redaction import mask_credentials

COMMAND_MODULES = [
    "neurolake_spark.cli.pipeline",
    "neurolake_spark.cli.ncf",
    "neurolake_spark.cli.stream",
    "neurolake_spark.cli.lineage",
    "neurolake_spark.cli.quality",
    "neurolake_spark.cli.ops",
    "neurolake_spark.cli.service",
    "neurolake_spark.cli.secrets",
]


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="neurolake",
        description="NeuroLake on Spark: lakehouse pipelines, the NCF format, quality gates and lineage.",
    )
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for name in COMMAND_MODULES:
        try:
            module = importlib.import_module(name)
        except ModuleNotFoundError as exc:
            if exc.name == name:
                continue
            raise
        module.register(subparsers)
    return parser


EXIT_CODES: dict[type[Exception], int] = {
    NeuroLakeError: 1,
    NCFError: 1,
    ConfigError: 2,
    BadInputError: 2,
    TableNameError: 2,
    CatalogError: 2,
    NCFCorruptFileError: 2,
    NCFVersionError: 2,
    NotATableError: 2,
    EnvironmentSetupError: 3,
    BusyError: 75,
}
"""The exit code of each error class the project raises on purpose (a subclass takes its
nearest listed ancestor's): 1 a failure, 2 bad input (settings, names, files), 3 a machine
without Java or the JVM jars, 75 (EX_TEMPFAIL) another run holds what the command needs."""


def exit_code(error: Exception) -> int:
    """The exit code :data:`EXIT_CODES` gives ``error``'s class (1 when none is listed)."""
    return next((EXIT_CODES[cls] for cls in type(error).__mro__ if cls in EXIT_CODES), 1)


def main(argv: list[str] | None = None) -> int:
    """Entry point of the ``neurolake`` console script."""
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return int(args.handler(args) or 0)
    except (NeuroLakeError, NCFError) as exc:
        message = mask_credentials(" ".join(str(exc).split())) or type(exc).__name__
        print(f"neurolake: error: {message}", file=sys.stderr)
        return exit_code(exc)
    except KeyboardInterrupt:
        print("neurolake: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:
        # The reader (e.g. `| head`) closed the pipe: stop quietly, as Unix tools do.
        sys.stdout = open(os.devnull, "w")  # noqa: SIM115 (stdout for the rest of the process)
        return 141
