"""The service's Spark engine: one session for all statements, previews and bulk writes.

On the embedded default the session is a local one started lazily at first use (the service
answers its catalog routes without a JVM until someone asks for data); with
``service.spark_remote: sc://host:15002`` it is a Spark Connect session instead. Work is run
under a tag (:meth:`ServiceEngine.tagged`) so that a cancel or a timeout can stop its Spark jobs
with :meth:`ServiceEngine.interrupt`. Statements run in an isolated session each
(:meth:`ServiceEngine.isolated`: own temporary views and SQL settings) and in the FAIR scheduler
pool of their tenant (:meth:`ServiceEngine.pool`). :meth:`ServiceEngine.parser` is Spark's SQL
parser: in the local session's JVM, or with Spark Connect in a JVM of the local pyspark install
started for parsing only (Spark Connect offers no parse-without-running call).
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterator
from contextlib import contextmanager

from pyspark import SparkContext
from pyspark.sql import SparkSession

from neurolake_spark.config import Settings
from neurolake_spark.service.readonly import SqlParser
from neurolake_spark.session import build_spark, register_ncf

log = logging.getLogger("neurolake.service.engine")
FAIR_CONF = {"spark.scheduler.mode": "FAIR"}
POOL_PROPERTY = "spark.scheduler.pool"
STATEMENT_CONF = {"spark.sql.legacy.parameterSubstitution.constantsOnly": "true"}
"""Per local statement session: bind parameter markers in the analyzer (Spark 4.2's binding in
the parser does not reach through Delta's SQL parser extension: ``:name`` stays unbound). Not
sent to Spark Connect, where it unbinds markers even without Delta: there parameters travel as
a view (:meth:`~.readonly.CheckedStatement.rewrite`)."""


class ServiceEngine:
    """The Spark session the service owns; started on the first :meth:`session` call."""

    def __init__(self, settings: Settings):
        self._settings = settings
        self._lock = threading.Lock()
        self._spark: SparkSession | None = None
        self._parser: SqlParser | None = None
        self._gateway = None

    @property
    def remote(self) -> str | None:
        """The Spark Connect URL when the service uses one, else None (a local session)."""
        return self._settings.service.spark_remote

    @property
    def started(self) -> bool:
        return self._spark is not None

    def session(self) -> SparkSession:
        """The service's session (started on first call, then shared; a local session whose JVM
        has died is replaced by a new one)."""
        with self._lock:
            if self._spark is not None and not self.alive():
                log.warning("the service's Spark JVM has exited: starting a new one")
                self._forget_dead_jvm()
            if self._spark is None:
                self._spark = self._start()
            return self._spark

    def alive(self) -> bool:
        """False when the JVM of a local session this process launched has exited."""
        gateway = SparkContext._gateway
        process = getattr(gateway, "proc", None)
        return self.remote is not None or process is None or process.poll() is None

    def _forget_dead_jvm(self) -> None:
        """Drop every reference pyspark keeps to a dead JVM, so the next start launches one."""
        SparkSession._instantiatedSession = None
        SparkSession._activeSession = None
        SparkContext._active_spark_context = None
        SparkContext._gateway = None
        SparkContext._jvm = None
        self._spark = None
        self._parser = None

    def _start(self) -> SparkSession:
        if self.remote:
            spark = SparkSession.builder.remote(self.remote).getOrCreate()
            register_ncf(spark)
            return spark
        spark = self._settings.spark
        fair = self._settings.model_copy(
            update={"spark": spark.model_copy(update={"conf": {**FAIR_CONF, **spark.conf}})}
        )
        return build_spark(fair)

    def parser(self) -> SqlParser:
        """Spark's SQL parser (see the module docstring); it never runs anything."""
        if not self.remote:
            self.session()  # a local parser lives in the session's JVM: replaced with it
        if self._parser is None:
            parser = SqlParser(self._parsing_jvm())
            with self._lock:
                self._parser = self._parser or parser
        return self._parser

    def _parsing_jvm(self):
        if not self.remote:
            return self.session()._jvm
        from pyspark.java_gateway import launch_gateway

        with self._lock:
            if self._gateway is None:
                self._gateway = launch_gateway()
            return self._gateway.jvm

    def isolated(self) -> SparkSession:
        """A session of its own for one statement: its temporary views and settings stay in it."""
        if self.remote:
            return SparkSession.builder.remote(self.remote).create()
        spark = self.session().newSession()
        for key, value in STATEMENT_CONF.items():
            spark.conf.set(key, value)
        return spark

    def release(self, spark: SparkSession) -> None:
        """Give back a session :meth:`isolated` made (a Spark Connect one is closed on the server)."""
        if self.remote:
            spark.stop()

    @contextmanager
    def tagged(self, tag: str, spark: SparkSession | None = None) -> Iterator[SparkSession]:
        """Run the block's Spark jobs under ``tag`` in ``spark`` (default: the service's session);
        tags are per thread: enter it in the thread that runs the jobs.

        A local session also tags the SparkContext's jobs: the jobs a ``toLocalIterator`` runs
        from its serving thread carry the context's (inherited) tags, not the session's."""
        spark = spark or self.session()
        spark.addTag(tag)
        if not self.remote:
            spark.sparkContext.addJobTag(tag)
        try:
            yield spark
        finally:
            spark.removeTag(tag)
            if not self.remote:
                spark.sparkContext.removeJobTag(tag)

    @contextmanager
    def pool(self, name: str) -> Iterator[None]:
        """Run this thread's Spark jobs in the FAIR scheduler pool ``name`` (local sessions; a
        Spark Connect server schedules by its own settings)."""
        if self.remote:
            yield
            return
        context = self.session().sparkContext
        context.setLocalProperty(POOL_PROPERTY, name)
        try:
            yield
        finally:
            context.setLocalProperty(POOL_PROPERTY, None)

    def interrupt(self, tag: str, spark: SparkSession | None = None) -> list[str]:
        """Stop the Spark jobs running under ``tag`` in ``spark`` (default: the service's
        session); the ids of the operations interrupted. A statement's own Spark Connect session
        must be given: Spark Connect interrupts per session."""
        spark = spark or self._spark
        if spark is None:
            return []
        interrupted = list(spark.interruptTag(tag))
        if not self.remote:
            spark.sparkContext.cancelJobsWithTag(tag)
        return interrupted

    def close(self) -> None:
        """Stop a Spark Connect session (a local one belongs to the process and stays)."""
        with self._lock:
            if self._spark is not None and self.remote:
                self._spark.stop()
            self._spark = None
            if self._gateway is not None:
                self._gateway.shutdown()
                self._gateway = None
