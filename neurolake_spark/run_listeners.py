"""The registry of run listener factories: which listeners a new :class:`~neurolake_spark.runs.JobRun` gets.

A factory turns the settings into the listeners they enable (none when switched off).
The registry knows no listener itself: the session and ``Lakehouse`` register the
project's (metrics, then lineage; see :func:`neurolake_spark.session.register_run_listeners`),
as OpenLineage's client registers its transports, and anyone may add one.

Example (a registry of one's own; ``run_listeners`` is the one ``JobRun`` asks)::

    >>> from neurolake_spark.config import load_settings
    >>> class Audit:
    ...     def on_start(self, run): print("started", run.job_name)
    ...     def on_end(self, run): print(run.job_name, run.status)
    >>> registry = ListenerRegistry()
    >>> registry.register("audit", lambda settings: [Audit()])
    >>> listeners = registry.build(load_settings("conf/local.yaml"))   # every factory's, in order
    >>> from neurolake_spark.runs import JobRun
    >>> with JobRun("ingest", load_settings("conf/local.yaml"), listeners=listeners):
    ...     pass
    started ingest
    ingest success
"""

from __future__ import annotations

from collections.abc import Callable

from neurolake_spark.config import Settings
from neurolake_spark.run_model import RunListener

ListenerFactory = Callable[[Settings], list[RunListener]]
"""Makes the listeners ``settings`` turn on (an empty list when they are off)."""


class ListenerRegistry:
    """Named listener factories, asked in the order they were first registered."""

    def __init__(self) -> None:
        self._factories: dict[str, ListenerFactory] = {}

    def register(self, name: str, factory: ListenerFactory) -> None:
        """Add ``factory`` under ``name``, or replace the one registered under it (keeping its place)."""
        self._factories[name] = factory

    def names(self) -> list[str]:
        """The registered factories' names, in order."""
        return list(self._factories)

    def build(self, settings: Settings) -> list[RunListener]:
        """The listeners every registered factory makes of ``settings``, in order."""
        return [listener for factory in self._factories.values() for listener in factory(settings)]


run_listeners = ListenerRegistry()
"""The registry a :class:`~neurolake_spark.runs.JobRun` asks when it is given no listeners."""
