"""The service's Spark engine: one session for all statements, previews and bulk writes.

On the embedded default the session is a local one started lazily at first use (the service
answers its catalog routes without a JVM until someone asks for data); with
``service.spark_remote: sc://host:15002`` it is a Spark Connect session instead. Work is run
under a tag (:meth:`ServiceEngine.tagged`) so that a cancel or a timeout can stop its Spark jobs
with :meth:`ServiceEngine.interrupt`.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager

from pyspark.sql import SparkSession

from neurolake_spark.config import Settings
from neurolake_spark.session import build_spark, register_ncf


class ServiceEngine:
    """The Spark session the service owns; started on the first :meth:`session` call."""

    def __init__(self, settings: Settings):
        self._settings = settings
        self._lock = threading.Lock()
        self._spark: SparkSession | None = None

    @property
    def remote(self) -> str | None:
        """The Spark Connect URL when the service uses one, else None (a local session)."""
        return self._settings.service.spark_remote

    @property
    def started(self) -> bool:
        return self._spark is not None

    def session(self) -> SparkSession:
        """The service's session (started on first call, then shared)."""
        with self._lock:
            if self._spark is None:
                self._spark = self._start()
            return self._spark

    def _start(self) -> SparkSession:
        if self.remote:
            spark = SparkSession.builder.remote(self.remote).getOrCreate()
            register_ncf(spark)
            return spark
        return build_spark(self._settings)

    @contextmanager
    def tagged(self, tag: str) -> Iterator[SparkSession]:
        """Run the block's Spark jobs under ``tag`` (tags are per thread: enter it in the thread
        that runs the jobs)."""
        spark = self.session()
        spark.addTag(tag)
        try:
            yield spark
        finally:
            spark.removeTag(tag)

    def interrupt(self, tag: str) -> list[str]:
        """Stop the Spark jobs running under ``tag``; the ids of the operations interrupted."""
        if self._spark is None:
            return []
        return list(self._spark.interruptTag(tag))

    def close(self) -> None:
        """Stop a Spark Connect session (a local one belongs to the process and stays)."""
        with self._lock:
            if self._spark is not None and self.remote:
                self._spark.stop()
            self._spark = None
