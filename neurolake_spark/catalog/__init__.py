"""The lineage catalog: OpenLineage events in, assets, versions, quality and graph queries out.

One concern per module, each depending only on the ones above it:

- :mod:`.errors`, :mod:`.times`, :mod:`.records`, :mod:`.words` — structured errors, time
  parsing, the records queries answer with, and the words people read for them.
- :mod:`.schema`, :mod:`.db` — the tables and migrations; engine, SQLite/PostgreSQL
  differences, read and write transactions.
- :mod:`.events`, :mod:`.ingest` — parsing RunEvents; the write path (rows and lineage edges).
- :mod:`.queries` — the read side: datasets, search, versions, runs, quality, counts.
- :mod:`.curation` — owners, descriptions and tags (pipeline definition and by hand).
- :mod:`.graph` — upstream / downstream / column lineage / path / diff, as of a time.
- :mod:`.render` — the graph as self-contained HTML, SVG, Graphviz DOT, Mermaid or JSON.
- :mod:`.store` — :class:`~.store.CatalogStore`, the facade over all of them.
"""
