"""``CatalogStore``: the lineage catalog in SQLite (embedded default) or PostgreSQL, in one object.

Example::

    store = CatalogStore.from_settings(settings)      # settings.catalog_url
    store.ingest(run_event)                            # True, or False for a duplicate
    store.search("revenue")                            # name, column, tag, owner, description
    store.tag("gold.daily_revenue", ["finance"])
    store.graph().upstream("gold.daily_revenue", as_of="2026-11-24")

A facade over the catalog's layers: the database (:mod:`.db`), the write path
(:mod:`.ingest`), owners, descriptions and tags (:mod:`.curation`), the read queries it
inherits (:mod:`.queries`) and the lineage graph (:mod:`.graph`). A read-only front end
can use :class:`~.queries.CatalogQueries` and :class:`~.graph.LineageGraph` alone.
"""

from __future__ import annotations

from contextlib import AbstractContextManager
from typing import Any

from sqlalchemy import Connection

from neurolake_spark.catalog.curation import Definitions, add_tags, remove_tags, sync_definitions
from neurolake_spark.catalog.db import CatalogDatabase, sqlite_file
from neurolake_spark.catalog.errors import CatalogNotFoundError
from neurolake_spark.catalog.graph import LineageGraph
from neurolake_spark.catalog.ingest import EventWriter
from neurolake_spark.catalog.queries import CatalogQueries


class CatalogStore(CatalogQueries):
    """The catalog of one environment; see the module docstring."""

    def __init__(self, url: str, settings: Any = None, default_namespace: str | None = None):
        super().__init__(CatalogDatabase(url), default_namespace)
        self.url = url
        self.engine = self.db.engine
        self.definitions = Definitions(settings)
        self._writer = EventWriter(self.db, self.definitions)

    @classmethod
    def from_settings(cls, settings: Any, create: bool = True) -> CatalogStore:
        """The catalog at ``settings.catalog_url`` (default ``<warehouse>/catalog.db``).

        With ``create=False`` a missing SQLite file is a :class:`CatalogNotFoundError` instead
        of a new empty catalog (what read-only commands want).
        """
        url = settings.catalog_url
        path = sqlite_file(url)
        if path is not None:
            if not create and not path.exists():
                raise CatalogNotFoundError(path)
            path.parent.mkdir(parents=True, exist_ok=True)
        return cls(url, settings=settings, default_namespace=settings.lineage_namespace)

    def close(self) -> None:
        self.db.close()

    def write(self) -> AbstractContextManager[Connection]:
        """A write transaction that holds the write lock from its start (short, please)."""
        return self.db.write()

    def read(self) -> AbstractContextManager[Connection]:
        """A read transaction (one consistent snapshot)."""
        return self.db.read()

    def ingest(self, event: dict[str, Any]) -> bool:
        """Store one OpenLineage RunEvent; False if an event with the same identity is already stored.

        Raises :class:`~neurolake_spark.catalog.errors.InvalidEventError` for a malformed event.
        """
        return self._writer.ingest(event)

    def sync_definitions(self, settings: Any = None) -> int:
        """Copy owners, descriptions and tags from the pipeline definition (of ``settings``, if given).

        Returns how many datasets changed; see :func:`~.curation.sync_definitions`.
        """
        if settings is not None:
            self.definitions.use(settings)
        return sync_definitions(self.db, self.definitions)

    def tag(self, name: str, tags: list[str], namespace: str | None = None) -> list[str]:
        """Add tags to a dataset; returns its tags afterwards."""
        return add_tags(self.db, name, tags, namespace, self.default_namespace)

    def untag(self, name: str, tags: list[str], namespace: str | None = None) -> list[str]:
        """Remove tags from a dataset; returns its tags afterwards. Unknown tags are an error."""
        return remove_tags(self.db, name, tags, namespace, self.default_namespace)

    def graph(self) -> LineageGraph:
        """Lineage graph queries over this catalog (see :mod:`neurolake_spark.catalog.graph`)."""
        return LineageGraph(self)
