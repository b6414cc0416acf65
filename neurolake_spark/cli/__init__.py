"""The ``neurolake`` command.

Each area of the product adds its own sub-commands from a module in this package that
defines ``register(subparsers)``; :data:`COMMAND_MODULES` lists them. A command handler
takes the parsed ``argparse.Namespace`` and returns the process exit code.

Errors the project raises on purpose (:class:`~neurolake_spark.errors.NeuroLakeError`,
:class:`ncf_datasource.NCFError`) are printed as one line on stderr, never as a traceback.
"""

from __future__ import annotations

import argparse
import importlib
import os
import sys

COMMAND_MODULES = [
    "neurolake_spark.cli.pipeline",
    "neurolake_spark.cli.ncf",
    "neurolake_spark.cli.stream",
    "neurolake_spark.cli.lineage",
    "neurolake_spark.cli.quality",
    "neurolake_spark.cli.ops",
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


def _user_errors() -> tuple[type[BaseException], ...]:
    from neurolake_spark.errors import NeuroLakeError

    errors: list[type[BaseException]] = [NeuroLakeError]
    try:
        from ncf_datasource import NCFError
    except ImportError:
        pass
    else:
        errors.append(NCFError)
    return tuple(errors)


def main(argv: list[str] | None = None) -> int:
    """Entry point of the ``neurolake`` console script."""
    parser = build_parser()
    args = parser.parse_args(argv)
    user_errors = _user_errors()
    try:
        return int(args.handler(args) or 0)
    except user_errors as exc:
        from neurolake_spark.redaction import mask_credentials

        message = mask_credentials(" ".join(str(exc).split())) or type(exc).__name__
        print(f"neurolake: error: {message}", file=sys.stderr)
        return getattr(exc, "exit_code", 1)
    except KeyboardInterrupt:
        print("neurolake: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:
        # The reader (e.g. `| head`) closed the pipe: stop quietly, as Unix tools do.
        sys.stdout = open(os.devnull, "w")  # noqa: SIM115 (open until the process exits)
        return 141
