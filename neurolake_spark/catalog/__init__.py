"""The lineage catalog: OpenLineage events in, assets, versions, quality and graph queries out.

- :mod:`.store` — :class:`~.store.CatalogStore` (SQLite or PostgreSQL): ``ingest``, assets, runs, quality.
- :mod:`.graph` — upstream / downstream / column lineage / path / diff, as of a time.
- :mod:`.render` — the graph as self-contained HTML, SVG, Graphviz DOT, Mermaid or JSON.
"""
