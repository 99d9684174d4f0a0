"""Bulk writes: a few statements per page instead of a query per row, on PostgreSQL and SQLite.

A page of upstream rows (MoySklad: at most 1000) is written with one statement per kind of write,
whatever its size: CHUNK matches the largest page, and on SQLite the real bound-variable limit of
the library is used instead of Django's historical 999 (SQLite >= 3.32 allows 32766; Django 6.0
reads the limit the same way)."""
from __future__ import annotations

import json
import sqlite3
import uuid
from datetime import date, datetime, time
from decimal import Decimal
from typing import Any, Callable, Iterable, Sequence, TypeVar

from django.conf import settings
from django.db import connections, models, router, transaction
from django.db.models import Field
from django.db.models.constants import OnConflict

M = TypeVar("M", bound=models.Model)

CHUNK = 1000  # rows per statement: one upstream page


def chunked(seq: Sequence, size: int = CHUNK) -> Iterable[Sequence]:
    for i in range(0, len(seq), size):
        yield seq[i:i + size]


def _lift_sqlite_limit(model: type[models.Model] | None = None) -> None:
    """Let Django batch up to SQLite's real variable limit on this connection (idempotent)."""
    alias = router.db_for_write(model) if model is not None else "default"
    connection = connections[alias]
    if connection.vendor != "sqlite" or getattr(connection.features, "_syncsite_lifted", False):
        return
    connection.ensure_connection()
    try:
        limit = connection.connection.getlimit(sqlite3.SQLITE_LIMIT_VARIABLE_NUMBER)
    except (AttributeError, sqlite3.Error):  # Python < 3.11: keep Django's safe default
        limit = connection.features.max_query_params
    connection.features.max_query_params = max(limit, 999)
    connection.features._syncsite_lifted = True


def save_all(model: type[M], objs: list[M], *, fields: list[str]) -> None:
    """Insert the objects without a pk (their pks are set), update `fields` of those with one,
    each group in bulk. Updates use INSERT … ON CONFLICT (id) DO UPDATE: one statement a chunk."""
    _lift_sqlite_limit(model)
    new = [o for o in objs if o.pk is None]
    old = [o for o in objs if o.pk is not None]
    if new:
        _bulk_create(model, new)
    if old:
        _bulk_create(model, old, update_conflicts=True, unique_fields=[model._meta.pk.name], update_fields=fields)


def upsert(model: type[M], objs: list[M], *, unique_fields: list[str], update_fields: list[str]) -> None:
    """INSERT … ON CONFLICT (unique_fields) DO UPDATE SET update_fields, in chunks."""
    _lift_sqlite_limit(model)
    if objs:
        _bulk_create(model, objs, update_conflicts=True, unique_fields=unique_fields, update_fields=update_fields)


def insert_ignore(model: type[M], objs: list[M], *, batch_size: int = CHUNK) -> None:
    """INSERT … ON CONFLICT DO NOTHING, in chunks."""
    _lift_sqlite_limit(model)
    if objs:
        _bulk_create(model, objs, batch_size=batch_size, ignore_conflicts=True)


def upsert_rows(model: type[M], rows: list[dict], *, unique_fields: list[str], update_fields: list[str]) -> None:
    """upsert() for rows given as dicts of {attname: value} (`product_id`, not `product`): no model
    instance per row - Model.__init__ was the largest single cost of a big import after the SQL
    compiler. Fields a row leaves out take their default; auto_now fields get the time."""
    _write_rows(model, rows, update_conflicts=True, unique_fields=unique_fields, update_fields=update_fields)


def insert_rows_ignore(model: type[M], rows: list[dict], *, batch_size: int = CHUNK) -> None:
    """insert_ignore() for rows given as dicts (see upsert_rows)."""
    _write_rows(model, rows, batch_size=batch_size, ignore_conflicts=True)


def in_chunks(queryset_for, keys: Sequence, size: int = CHUNK):
    """Run `queryset_for(chunk)` for each chunk of keys and chain the results (bounded IN lists)."""
    _lift_sqlite_limit()
    keys = list(keys)
    for chunk in chunked(keys, size):
        yield from queryset_for(chunk)


def by_pk(model: type[M], pks: Iterable) -> dict:
    """{pk: object} in one query per CHUNK pks (QuerySet.in_bulk splits at Django's SQLite 999)."""
    pks = list(pks)
    return {obj.pk: obj for obj in in_chunks(lambda chunk: model.objects.filter(pk__in=chunk), pks)}


# ------------------------------------------------------------------------------------------------
# The fast path behind save_all / upsert / insert_ignore
# ------------------------------------------------------------------------------------------------
# Django's bulk_create compiles every value of every row through the generic SQL compiler (a
# placeholder, pre_save, get_db_prep_save and an isinstance ladder per value): importing 160,000
# MoySklad rows spent about half its CPU there. `_bulk_create` writes the same statement -
# INSERT … VALUES (…), (…) [ON CONFLICT …] [RETURNING pk] - with values prepared once per field
# type, and falls back to bulk_create for anything it does not handle (other databases,
# multi-table inheritance, custom placeholders, expressions as values).
_PLAIN_TYPES = {
    "CharField": str, "TextField": str, "SlugField": str, "EmailField": str, "URLField": str,
    "BooleanField": bool, "IntegerField": int, "BigIntegerField": int, "SmallIntegerField": int,
    "PositiveIntegerField": int, "PositiveBigIntegerField": int, "PositiveSmallIntegerField": int,
    "AutoField": int, "BigAutoField": int, "SmallAutoField": int,
}
_PG_MAX_PARAMS = 65_535


class _Fallback(Exception):
    """A value the fast path does not prepare (an expression): use Django's bulk_create."""


def _preparer(field: Field, connection) -> Callable[[Any], Any]:
    """The cheapest correct `get_db_prep_save` for this field: values already of the column's
    Python type pass through; anything else takes Django's own conversion."""
    target = field.target_field if field.is_relation else field
    plain = _PLAIN_TYPES.get(target.get_internal_type())
    generic = field.get_db_prep_save

    def slow(value):
        if hasattr(value, "resolve_expression"):
            raise _Fallback
        return generic(value, connection)

    if isinstance(target, models.DateTimeField) and settings.USE_TZ:
        # An aware datetime is what get_prep_value hands on unchanged; then the backend's own
        # adaptation, inlined: PostgreSQL takes it as it is, SQLite as naive text in its zone.
        if connection.vendor == "postgresql":
            def moment(value):
                return value if type(value) is datetime and value.tzinfo is not None else slow(value)
            return moment
        zone = connection.timezone

        def moment(value):
            if type(value) is not datetime or value.tzinfo is None:
                return slow(value)
            return str(value.astimezone(zone).replace(tzinfo=None))
        return moment
    if isinstance(target, models.DecimalField):
        # A finite Decimal is what DecimalField.get_db_prep_save hands the driver, unchanged.
        def number(value):
            if type(value) is Decimal and value.is_finite():
                return value
            return slow(value)
        return number
    if plain is None:
        return slow
    if plain is str:
        def text(value):
            if value is None or type(value) is str:
                return value
            if isinstance(value, str):   # TextChoices members and other str subclasses: their value
                return str.__str__(value)
            return slow(value)
        return text

    def fast(value):
        if value is None or type(value) is plain:
            return value
        return slow(value)
    return fast


def _reads_attribute(field: Field) -> bool:
    """True when pre_save(obj, add=True) is just getattr (no auto_now, no file commit...)."""
    if type(field).pre_save is Field.pre_save:
        return True
    return isinstance(field, models.DateField) and not (field.auto_now or field.auto_now_add)


def _bulk_create(model: type[M], objs: list[M], *, batch_size: int = CHUNK, update_conflicts: bool = False,
                 ignore_conflicts: bool = False, unique_fields: list[str] | None = None,
                 update_fields: list[str] | None = None) -> list[M]:
    """`model.objects.bulk_create(objs, …)` with the same statements and the same effects on the
    objects (pre_save values, pks of inserted rows, `_state`), built without the per-value
    compiler overhead on SQLite and PostgreSQL."""
    alias = router.db_for_write(model)
    connection = connections[alias]
    opts = model._meta
    django_kwargs = dict(batch_size=batch_size, update_conflicts=update_conflicts, ignore_conflicts=ignore_conflicts,
                         unique_fields=unique_fields, update_fields=update_fields)
    if (connection.vendor not in ("sqlite", "postgresql") or opts.parents or not objs
            or any(hasattr(f, "get_placeholder") or getattr(f, "generated", False) or f.has_db_default()
                   for f in opts.concrete_fields)
            or (update_conflicts and not connection.features.supports_update_conflicts_with_target)):
        return model.objects.bulk_create(objs, **{k: v for k, v in django_kwargs.items() if v is not None})
    on_conflict = OnConflict.UPDATE if update_conflicts else OnConflict.IGNORE if ignore_conflicts else None
    suffix = ""
    if on_conflict is not None:
        columns = lambda names: [opts.get_field(n).column for n in names or ()]  # noqa: E731
        suffix = " " + connection.ops.on_conflict_suffix_sql(
            None, on_conflict, columns(update_fields), columns(unique_fields))
    for obj in objs:
        if obj.pk is None:
            obj.pk = opts.pk.get_pk_value_on_save(obj)
        obj._prepare_related_fields_for_save(operation_name="bulk_create")
    with_pk = [o for o in objs if o.pk is not None]
    without_pk = [o for o in objs if o.pk is None]
    returning = on_conflict != OnConflict.IGNORE and connection.features.can_return_rows_from_bulk_insert
    try:  # every value is prepared before anything is sent, so a fallback starts from a clean slate
        statements = []
        if with_pk:
            statements += _statements(connection, model, with_pk, list(opts.concrete_fields), suffix, batch_size,
                                      returning=False)
        if without_pk:
            fields = [f for f in opts.concrete_fields if not isinstance(f, models.AutoField)]
            statements += _statements(connection, model, without_pk, fields, suffix, batch_size, returning=returning)
    except _Fallback:
        model.objects.bulk_create(objs, **{k: v for k, v in django_kwargs.items() if v is not None})
    else:
        with transaction.atomic(using=alias, savepoint=False), connection.cursor() as cursor:
            for sql, params, batch, wants_ids in statements:
                cursor.execute(sql, params)
                if wants_ids:
                    rows = connection.ops.fetch_returned_insert_rows(cursor)
                    if len(rows) != len(batch):  # cannot happen with INSERT … RETURNING; be loud if it does
                        raise RuntimeError(f"{opts.label}: {len(rows)} ids returned for {len(batch)} rows")
                    for obj, row in zip(batch, rows):
                        setattr(obj, opts.pk.attname, row[0])
        for obj in objs:
            obj._state.adding = False
            obj._state.db = alias
    return objs


class _Row:
    """A row given as a dict, standing in for a model instance: `_statements` reads `__dict__`."""

    def __init__(self, values: dict):
        self.__dict__ = values


def _write_rows(model: type[M], rows: list[dict], *, batch_size: int = CHUNK, update_conflicts: bool = False,
                ignore_conflicts: bool = False, unique_fields: list[str] | None = None,
                update_fields: list[str] | None = None) -> None:
    if not rows:
        return
    _lift_sqlite_limit(model)
    alias = router.db_for_write(model)
    connection = connections[alias]
    opts = model._meta
    fields = [f for f in opts.concrete_fields if not isinstance(f, models.AutoField)]
    known = {f.attname for f in fields}
    for row in rows:
        if not row.keys() <= known:
            raise TypeError(f"{opts.label} has no field(s) {sorted(row.keys() - known)} (rows use attnames)")

    def as_models():
        return _bulk_create(model, [model(**row) for row in rows], batch_size=batch_size,
                            update_conflicts=update_conflicts, ignore_conflicts=ignore_conflicts,
                            unique_fields=unique_fields, update_fields=update_fields)

    if (connection.vendor not in ("sqlite", "postgresql") or opts.parents
            or any(hasattr(f, "get_placeholder") or getattr(f, "generated", False) or f.has_db_default()
                   for f in opts.concrete_fields)
            or (update_conflicts and not connection.features.supports_update_conflicts_with_target)):
        as_models()
        return
    on_conflict = OnConflict.UPDATE if update_conflicts else OnConflict.IGNORE if ignore_conflicts else None
    suffix = ""
    if on_conflict is not None:
        columns = lambda names: [opts.get_field(n).column for n in names or ()]  # noqa: E731
        suffix = " " + connection.ops.on_conflict_suffix_sql(
            None, on_conflict, columns(update_fields), columns(unique_fields))
    defaults = {f.attname: f.get_default() for f in fields}
    try:
        statements = _statements(connection, model, [_Row({**defaults, **row}) for row in rows], fields, suffix,
                                 batch_size, returning=False)
    except _Fallback:
        as_models()
        return
    with transaction.atomic(using=alias, savepoint=False), connection.cursor() as cursor:
        for sql, params, _batch, _ids in statements:
            cursor.execute(sql, params)


# Column types a PostgreSQL row can travel as JSON text (see _statements).
_JSON_TYPES = {"CharField", "TextField", "SlugField", "EmailField", "URLField", "BooleanField", "IntegerField",
               "BigIntegerField", "SmallIntegerField", "PositiveIntegerField", "PositiveBigIntegerField",
               "PositiveSmallIntegerField", "AutoField", "BigAutoField", "SmallAutoField", "DateTimeField",
               "DateField", "TimeField", "DecimalField", "FloatField", "UUIDField", "JSONField"}


def _json_value(value):
    """A prepared PostgreSQL parameter as a JSON scalar whose text PostgreSQL casts back exactly."""
    kind = type(value)
    if value is None or kind is str or kind is int or kind is bool:
        return value
    if isinstance(value, (str, int)):   # enum members (TextChoices, IntegerChoices): their plain value
        return bool(value) if isinstance(value, bool) else str.__str__(value) if isinstance(value, str) else int(value)
    if kind is Decimal or kind is float or kind is uuid.UUID:
        return str(value) if kind is not float else repr(value)
    if kind is datetime or kind is date or kind is time:
        return value.isoformat()
    obj = getattr(value, "obj", _MISSING)   # psycopg's Jsonb wrapper, with the field's encoder
    if obj is not _MISSING:
        return (getattr(value, "dumps", None) or json.dumps)(obj)
    raise _Fallback


_MISSING = object()


def _statements(connection, model, objs: list, fields: list[Field], suffix: str, batch_size: int, *,
                returning: bool) -> list[tuple[str, list, list, bool]]:
    """[(sql, params, objects, returns ids)], one INSERT per batch, values prepared.

    SQLite: INSERT … VALUES (?, …), (…). PostgreSQL: the batch travels as one JSON text parameter,
    `INSERT … SELECT (r->>0)::type, … FROM jsonb_array_elements(%s::jsonb) r`: one small statement
    to plan (as Django 5.2's UNNEST), and one string to send - psycopg quotes array elements one by
    one in Python, which cost as much as the insert itself. jsonb, not json: `r->>i` on a json
    value re-scans the row's text for every column (measured: 46 µs a row of 11 columns, against
    16 µs with jsonb)."""
    opts = model._meta
    qn = connection.ops.quote_name
    columns = ", ".join(qn(f.column) for f in fields)
    tail = suffix
    if returning:
        tail += " RETURNING " + f"{qn(opts.db_table)}.{qn(opts.pk.column)}"
    as_json = connection.vendor == "postgresql" and all(
        (f.target_field if f.is_relation else f).get_internal_type() in _JSON_TYPES for f in fields)
    if as_json:
        types = [f.db_type(connection).split("(")[0] for f in fields]
        size = batch_size or CHUNK
        sql = (f"INSERT INTO {qn(opts.db_table)} ({columns}) SELECT "
               + ", ".join(f"(r->>{i})::{t}" for i, t in enumerate(types))
               + " FROM jsonb_array_elements(%s::jsonb) AS r" + tail)
    else:
        max_params = connection.features.max_query_params or _PG_MAX_PARAMS
        size = max(1, min(batch_size or CHUNK, max_params // max(1, len(fields))))
        head = f"INSERT INTO {qn(opts.db_table)} ({columns}) VALUES "
        row_sql = "(" + ", ".join(["%s"] * len(fields)) + ")"
    getters = []
    for f in fields:
        prep = _preparer(f, connection)
        if _reads_attribute(f):
            getters.append((f.attname, None, prep))
        else:
            getters.append((None, f, prep))
    out = []
    for start in range(0, len(objs), size):
        batch = objs[start:start + size]
        if as_json:
            rows = [[_json_value(prep(obj.__dict__[attname] if attname is not None and attname in obj.__dict__
                                      else (field.pre_save(obj, True) if field is not None
                                            else getattr(obj, attname))))
                     for attname, field, prep in getters] for obj in batch]
            out.append((sql, [json.dumps(rows, ensure_ascii=False)], batch, returning))
            continue
        params: list = []
        extend = params.append
        for obj in batch:
            values = obj.__dict__
            for attname, field, prep in getters:
                extend(prep(values[attname] if attname is not None and attname in values
                            else (field.pre_save(obj, True) if field is not None else getattr(obj, attname))))
        out.append((head + ", ".join([row_sql] * len(batch)) + tail, params, batch, returning))
    return out


# ------------------------------------------------------------------------------------------------
# Planner statistics on PostgreSQL
# ------------------------------------------------------------------------------------------------
class PlannerStats:
    """Keeps PostgreSQL's statistics in step with a big import.

    PostgreSQL plans from table statistics. A first import fills empty tables far faster than
    autovacuum re-analyzes them, so the planner goes on believing they hold a few rows and answers
    each page's `external_id IN (…1000 ids…)` by reading every binding through the other index:
    the import goes quadratic (measured: 26 ms a lookup at 100,000 bindings instead of 3). Call
    `added(n)` after each page: the tables are ANALYZEd whenever the rows added since the last
    time reach `growth` times their size then (and at least `min_rows`). ANALYZE samples a bounded
    number of rows: tens of milliseconds. Nothing happens on other databases."""

    def __init__(self, *models_: type[models.Model], min_rows: int = 5_000, growth: float = 3.0):
        self.models, self.min_rows, self.growth = models_, min_rows, growth
        self.size: int | None = None
        self.pending = 0
        self.analyzed = 0

    def added(self, rows: int) -> None:
        connection = connections[router.db_for_write(self.models[0])]
        if connection.vendor != "postgresql" or rows <= 0:
            return
        if self.size is None:
            with connection.cursor() as cursor:
                cursor.execute("SELECT GREATEST(reltuples, 0)::bigint FROM pg_class WHERE oid = %s::regclass",
                               [self.models[0]._meta.db_table])
                row = cursor.fetchone()
            self.size = int(row[0]) if row else 0
        self.pending += rows
        if self.pending < max(self.min_rows, self.growth * self.size):
            return
        with connection.cursor() as cursor:
            for model in self.models:
                cursor.execute(f"ANALYZE {connection.ops.quote_name(model._meta.db_table)}")
        self.size += self.pending
        self.pending = 0
        self.analyzed += 1
