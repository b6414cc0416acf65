"""Errors the user sees as one line: each names the problem and, where it helps, what to do.

Which process exit code each one ends the ``neurolake`` command with is the command line's
business (:data:`neurolake_spark.cli.EXIT_CODES`).
"""


class NeuroLakeError(Exception):
    """Base of every error the project raises on purpose; the CLI prints it as one line."""


class ConfigError(NeuroLakeError):
    """A settings file, an override or a pipeline definition is wrong."""


class TableNameError(NeuroLakeError):
    """A logical table name is malformed, hostile or unknown."""


class EnvironmentSetupError(NeuroLakeError):
    """Java or the JVM jars are missing and cannot be set up automatically."""


class BadInputError(NeuroLakeError):
    """What the user gave is wrong (a condition, a key, a request): fix it and run again."""


class BusyError(NeuroLakeError):
    """Another run holds what this command needs: try again later."""


class PipelineError(NeuroLakeError):
    """A pipeline step failed for a reason the user can act on (missing input, blocked gate...)."""
