"""What people say about datasets: owners, descriptions and tags.

Two sources: the pipeline definition (``conf/pipeline.yaml``: each table's owner,
description, tags and format, applied when the catalog first sees a dataset and again by
:func:`sync_definitions`), and tags added by hand (:func:`add_tags`, :func:`remove_tags`).
Tags remember their source (``definition``, ``event`` or ``user``), so a sync replaces
only the definition's.

Example::

    definitions = Definitions(settings)
    sync_definitions(db, definitions)                        # how many datasets changed
    add_tags(db, "gold.daily_revenue", ["finance"])          # its tags afterwards
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Connection, delete, select, update

from neurolake_spark.catalog import schema as s
from neurolake_spark.catalog.db import CatalogDatabase, insert_ignore
from neurolake_spark.catalog.errors import CatalogError, UnknownTagError
from neurolake_spark.catalog.queries import find_dataset, tags_of
from neurolake_spark.errors import ConfigError

log = logging.getLogger(__name__)

MAX_TAG_LENGTH = 200


@dataclass(frozen=True)
class DatasetDefinition:
    """What the pipeline definition declares about one dataset."""

    owner: str | None
    description: str | None
    tags: tuple[str, ...]
    format: str | None


class Definitions:
    """The pipeline definition's :class:`DatasetDefinition` per dataset name, read once from ``settings``.

    Raw sources appear as ``raw.<source>`` with the owner of their bronze table. Without
    settings (or with a broken definition, logged) there are none.
    """

    def __init__(self, settings: Any = None):
        self.settings = settings
        self._by_name: dict[str, DatasetDefinition] | None = None

    def use(self, settings: Any) -> None:
        """Read the definitions of ``settings`` from now on."""
        self.settings = settings
        self._by_name = None

    def by_name(self) -> dict[str, DatasetDefinition]:
        if self._by_name is None:
            self._by_name = self._load()
        return self._by_name

    def get(self, name: str) -> DatasetDefinition | None:
        return self.by_name().get(name)

    def _load(self) -> dict[str, DatasetDefinition]:
        if self.settings is None:
            return {}
        try:
            definition = self.settings.pipeline_definition()
        except ConfigError as exc:
            log.warning("catalog: pipeline definition not applied: %s", exc)
            return {}
        found = {
            name: DatasetDefinition(table.owner, table.description, tuple(table.tags), table.format)
            for name, table in definition.tables.items()
        }
        for name, source in definition.sources.items():
            bronze = definition.tables[source.bronze]
            found[f"raw.{name}"] = DatasetDefinition(
                bronze.owner, source.description or f"Raw {name} files.", ("raw",), source.format
            )
        return found


def apply_definition(conn: Connection, dataset_id: int, definition: DatasetDefinition) -> None:
    """Set owner, description and format of a dataset and replace its definition tags."""
    values = {k: getattr(definition, k) for k in ("owner", "description", "format") if getattr(definition, k)}
    if values:
        conn.execute(update(s.datasets).where(s.datasets.c.id == dataset_id).values(**values))
    tags = s.dataset_tags
    conn.execute(delete(tags).where(tags.c.dataset_id == dataset_id, tags.c.source == "definition"))
    for tag in definition.tags:
        conn.execute(insert_ignore(conn, tags).values(dataset_id=dataset_id, tag=tag, source="definition"))


def sync_definitions(db: CatalogDatabase, definitions: Definitions) -> int:
    """Copy owners, descriptions and tags from the pipeline definition onto known datasets.

    Returns how many datasets changed (nothing is written when none did). Tags that came
    from the definition and are no longer in it are removed; tags added by hand stay.
    """
    by_name = definitions.by_name()
    d, t = s.datasets.c, s.dataset_tags.c
    with db.read() as conn:
        rows = conn.execute(
            select(d.id, d.name, d.owner, d.description, d.format).where(d.name.in_(list(by_name)))
        ).all()
        tags = conn.execute(select(t.dataset_id, t.tag).where(t.source == "definition")).all()
    current_tags: dict[int, set[str]] = {}
    for dataset_id, tag in tags:
        current_tags.setdefault(dataset_id, set()).add(tag)
    stale = [
        row
        for row in rows
        if any(
            getattr(by_name[row.name], k) and getattr(by_name[row.name], k) != getattr(row, k)
            for k in ("owner", "description", "format")
        )
        or set(by_name[row.name].tags) != current_tags.get(row.id, set())
    ]
    if stale:
        with db.write() as conn:
            for row in stale:
                apply_definition(conn, row.id, by_name[row.name])
    return len(stale)


def add_tags(
    db: CatalogDatabase,
    name: str,
    tags: list[str],
    namespace: str | None = None,
    default_namespace: str | None = None,
) -> list[str]:
    """Add tags to a dataset by hand; returns its tags afterwards."""
    clean = _clean_tags(tags)
    with db.write() as conn:
        dataset_id = find_dataset(conn, name, namespace, default_namespace).id
        for tag in clean:
            conn.execute(
                insert_ignore(conn, s.dataset_tags).values(dataset_id=dataset_id, tag=tag, source="user")
            )
        return tags_of(conn, [dataset_id])[dataset_id]


def remove_tags(
    db: CatalogDatabase,
    name: str,
    tags: list[str],
    namespace: str | None = None,
    default_namespace: str | None = None,
) -> list[str]:
    """Remove tags from a dataset; returns its tags afterwards.

    A tag the dataset lacks raises :class:`UnknownTagError`.
    """
    clean = _clean_tags(tags)
    t = s.dataset_tags.c
    with db.write() as conn:
        dataset_id = find_dataset(conn, name, namespace, default_namespace).id
        present = tags_of(conn, [dataset_id])[dataset_id]
        missing = [tag for tag in clean if tag not in present]
        if missing:
            raise UnknownTagError(name, missing, sorted(present))
        conn.execute(delete(s.dataset_tags).where(t.dataset_id == dataset_id, t.tag.in_(clean)))
        return tags_of(conn, [dataset_id])[dataset_id]


def _clean_tags(tags: list[str]) -> list[str]:
    clean = [t.strip() for t in tags if t and t.strip()]
    if not clean:
        raise CatalogError("give at least one non-empty tag")
    too_long = [t for t in clean if len(t) > MAX_TAG_LENGTH]
    if too_long:
        raise CatalogError(f"tag too long ({len(too_long[0])} characters, at most {MAX_TAG_LENGTH})")
    return clean
