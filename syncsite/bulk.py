"""Bulk writes: one statement per page instead of a query per row, on PostgreSQL and SQLite."""
from __future__ import annotations

from typing import Iterable, Sequence, TypeVar

from django.db import models

M = TypeVar("M", bound=models.Model)

CHUNK = 500  # rows per statement: stays under SQLite's variable limit for wide rows


def chunked(seq: Sequence, size: int = CHUNK) -> Iterable[Sequence]:
    for i in range(0, len(seq), size):
        yield seq[i:i + size]


def save_all(model: type[M], objs: list[M], *, fields: list[str]) -> None:
    """Insert the objects without a pk (their pks are set), update `fields` of those with one,
    each group in bulk. Updates use INSERT … ON CONFLICT (id) DO UPDATE: one statement a chunk."""
    new = [o for o in objs if o.pk is None]
    old = [o for o in objs if o.pk is not None]
    if new:
        model.objects.bulk_create(new, batch_size=CHUNK)
    if old:
        model.objects.bulk_create(old, batch_size=CHUNK, update_conflicts=True,
                                  unique_fields=[model._meta.pk.name], update_fields=fields)


def upsert(model: type[M], objs: list[M], *, unique_fields: list[str], update_fields: list[str]) -> None:
    """INSERT … ON CONFLICT (unique_fields) DO UPDATE SET update_fields, in chunks."""
    if objs:
        model.objects.bulk_create(objs, batch_size=CHUNK, update_conflicts=True,
                                  unique_fields=unique_fields, update_fields=update_fields)


def in_chunks(queryset_for, keys: Sequence, size: int = CHUNK):
    """Run `queryset_for(chunk)` for each chunk of keys and chain the results (bounded IN lists)."""
    keys = list(keys)
    for chunk in chunked(keys, size):
        yield from queryset_for(chunk)
