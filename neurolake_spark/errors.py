"""Errors the user sees as one line: each names the problem and, where it helps, what to do."""


class NeuroLakeError(Exception):
    """Base of every error the project raises on purpose; the CLI prints it as one line."""

    exit_code = 1


class ConfigError(NeuroLakeError):
    """A settings file, an override or a pipeline definition is wrong."""

    exit_code = 2


class TableNameError(NeuroLakeError):
    """A logical table name is malformed, hostile or unknown."""

    exit_code = 2


class EnvironmentSetupError(NeuroLakeError):
    """Java or the JVM jars are missing and cannot be set up automatically."""

    exit_code = 3


class PipelineError(NeuroLakeError):
    """A pipeline step failed for a reason the user can act on (missing input, blocked gate...)."""
