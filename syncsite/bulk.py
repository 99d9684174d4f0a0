"""Bulk writes: a few statements per page instead of a query per row, on PostgreSQL and SQLite.

A page of upstream rows (MoySklad: at most 1000) is written with one statement per kind of write,
whatever its size: CHUNK matches the largest page, and on SQLite the real bound-variable limit of
the library is used instead of Django's historical 999 (SQLite >= 3.32 allows 32766; Django 6.0
reads the limit the same way)."""
from __future__ import annotations

import hashlib
import json
import re
import reprlib
import sqlite3
import uuid
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import date, datetime, time
from decimal import Decimal
from typing import Any, Callable, Iterable, Sequence, TypeVar

import msgspec
from django.conf import settings
from django.db import connections, models, router, transaction
from django.db.models import Field
from django.db.models.constants import OnConflict
from django.db.models.lookups import In
from psycopg.types.json import Jsonb

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


class Keys:
    """A batch of lookup values for `field__any`, passed through Django whole (a list would be
    resolved value by value while the query is built: 1,000 calls a page)."""

    __slots__ = ("values",)

    def __init__(self, values: Iterable):
        self.values = list(values)

    def __iter__(self):
        return iter(self.values)

    def __len__(self) -> int:
        return len(self.values)


def _array_literal(values: list) -> str:
    """A PostgreSQL array literal (`{1,2}`, `{"a","b"}`): one text parameter, no per-element
    adaptation by the driver."""
    if all(type(v) is int for v in values):
        return "{" + ",".join(map(str, values)) + "}"
    texts = [str(v) for v in values]
    plain = "".join(texts)
    if '"' not in plain and "\\" not in plain:   # ids, codes: nothing to escape
        return '{"' + '","'.join(texts) + '"}'
    return "{" + ",".join('"' + t.replace("\\", "\\\\").replace('"', '\\"') + '"' for t in texts) + "}"


@Field.register_lookup
class AnyOf(In):
    """`field__any=values`: on PostgreSQL `field = ANY(%s::type[])`, the values as ONE array
    parameter. `field__in` sends one placeholder per value, which psycopg splits and Django
    prepares one by one: for the 1,000 ids of a page that cost more than the query itself. The
    values must already be of the field's type (str, int). Elsewhere it is `IN (…)`."""

    lookup_name = "any"

    def get_prep_lookup(self):
        if hasattr(self.rhs, "resolve_expression"):
            return super().get_prep_lookup()
        values = self.rhs.values if isinstance(self.rhs, Keys) else self.rhs
        return [v for v in dict.fromkeys(values) if v is not None]

    def as_postgresql(self, compiler, connection):
        if hasattr(self.rhs, "resolve_expression"):
            return super().as_sql(compiler, connection)
        lhs, lhs_params = self.process_lhs(compiler, connection)
        db_type = self.lhs.output_field.db_type(connection)
        return f"{lhs} = ANY(%s::{db_type}[])", (*lhs_params, _array_literal(list(self.rhs)))


models.ForeignObject.register_lookup(AnyOf)   # related fields keep a lookup registry of their own


def tune_planner(sender, connection, **kwargs) -> None:
    """On each new PostgreSQL connection, tell the planner that random reads are cheap
    (`DB_RANDOM_PAGE_COST`, default 1.1: the usual figure for SSDs and a cached working set).
    With the server default of 4, a page's `external_id = ANY(1,000 ids)` lookup scans the whole
    binding table (55 ms at 140,000 rows) instead of probing its unique index (4-9 ms): a full
    import spent a third of its time there. Empty or 0 leaves the server's own setting."""
    cost = getattr(settings, "DB_RANDOM_PAGE_COST", None)
    if connection.vendor != "postgresql" or not cost:
        return
    with connection.cursor() as cursor:
        cursor.execute(f"SET random_page_cost = {float(cost):g}")


def lookup_chunk(model: type[models.Model]) -> int:
    """Keys per `__any` lookup: on PostgreSQL they travel as one array parameter, so a chunk can
    be large; elsewhere `__any` is an IN list, bounded by SQLite's variable limit."""
    return 20_000 if connections[router.db_for_read(model)].vendor == "postgresql" else CHUNK


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
    # The primary key travels only when the rows give it (an upsert keyed on it).
    fields = [f for f in opts.concrete_fields if not isinstance(f, models.AutoField) or f.attname in rows[0]]
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
                                 batch_size, returning=False, given=frozenset(rows[0]))
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
                returning: bool, given: frozenset = frozenset()) -> list[tuple[str, list, list, bool]]:
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
        if _reads_attribute(f) or f.attname in given:   # a value the caller gave wins over auto_now
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
@contextmanager
def bulk_session(using: str = "default"):
    """A bulk load's session on PostgreSQL: its commits do not wait for the WAL to reach the disk
    (`synchronous_commit = off`). A crash can lose the last fraction of a second of its commits,
    always a tail in commit order (a page's rows never without their bindings, a cursor never
    ahead of its data), and the next run reads them again; nothing is ever half-written. Other
    sessions (orders, webhooks) keep full durability."""
    connection = connections[using]
    if connection.vendor != "postgresql":
        yield
        return
    with connection.cursor() as cursor:
        cursor.execute("SET synchronous_commit = off")
    try:
        yield
    finally:
        try:
            if connection.connection is not None:
                with connection.cursor() as cursor:
                    cursor.execute("RESET synchronous_commit")
        except Exception:  # noqa: BLE001 - a broken session is not reused with the setting on
            connection.close()


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


# ------------------------------------------------------------------------------------------------
# COPY-based writes: bulk_insert, bulk_upsert
# ------------------------------------------------------------------------------------------------
# On PostgreSQL a page of rows travels as one COPY (binary unless a column is a decimal, see
# _copy_binary; psycopg formats each row in C) - into the table itself when every row is new, else
# into a temporary table from which one
# `INSERT … ON CONFLICT … DO UPDATE … WHERE (something differs)` writes only what really changed
# and returns those keys. SQLite has no COPY: the same effects with multi-row INSERTs, and the
# comparison made in Python against the rows read back.
@dataclass(frozen=True)
class UpsertResult:
    """Keys (tuples of the unique fields' values, in that order) of the rows inserted and of the
    existing rows whose update fields really changed; rows not listed were already so."""

    inserted: list[tuple]
    updated: list[tuple]

    @property
    def changed(self) -> list[tuple]:
        return self.inserted + self.updated


def _fill_values(model: type[models.Model], fields: list[str], touch: dict | None) -> tuple[list[Field], list[Any]]:
    """The model's other concrete columns and what a new row gets in them: `touch` values, the
    time for auto_now(_add) fields, else the field's default (callables called once)."""
    given = set(fields)
    now = None
    extra_fields, extra_values = [], []
    for f in model._meta.concrete_fields:
        if f.attname in given or isinstance(f, models.AutoField):
            continue
        if touch and f.attname in touch:
            value = touch[f.attname]
        elif getattr(f, "auto_now", False) or getattr(f, "auto_now_add", False):
            if now is None:
                from django.utils import timezone

                now = timezone.now()
            value = now
        else:
            value = f.get_default()   # the declared default; "" for text, None for nullable fields
        extra_fields.append(f)
        extra_values.append(value)
    return extra_fields, extra_values


def _copy_binary(fields: Sequence[Field]) -> bool:
    """Whether COPY sends these columns in binary: yes, unless one is a decimal. In binary,
    psycopg's C dumpers take ints, text and times as they are (no Python call per value) and
    PostgreSQL reads them without parsing text - a page of bindings costs ~4x less of our CPU. But
    its binary decimal dumper goes through Decimal.as_tuple() in Python, 3x its text one: a full
    stock read (three decimals a level) writes faster in text."""
    return not any(isinstance(f, models.DecimalField) for f in fields)


def _copy_value(field: Field, connection, binary: bool = True):
    """What COPY needs done to a value of this field in Python, or None for nothing. JSON: with
    the field's encoder, or msgspec (several times faster than json.dumps, the same JSON) -
    wrapped for psycopg's jsonb dumper in binary, as text otherwise. Times, in text only: each
    distinct value formatted once (a page's rows mostly share their stamps, and psycopg's own
    text dumper costs as much as the rest of a row)."""
    if isinstance(field, models.JSONField):
        encoder = field.encoder
        if encoder is None:
            dumps = msgspec.json.encode
        else:
            def dumps(value, _cls=encoder):
                return json.dumps(value, cls=_cls, ensure_ascii=False)
        if binary:
            def dump(value):
                return None if value is None else Jsonb(value, dumps=dumps)
        else:
            def dump(value):
                if value is None:
                    return None
                text = dumps(value)
                return text.decode() if isinstance(text, bytes) else text
        return dump
    if not binary and isinstance(field, models.DateTimeField):
        texts: dict = {}

        def dump(value):
            text = texts.get(value)
            if text is None:
                text = value.isoformat() if isinstance(value, datetime) else value
                if len(texts) < 10_000:
                    texts[value] = text
            return text
        return dump
    return None


_TYPE_NAMES = {"timestamp with time zone": "timestamptz", "double precision": "float8"}


def _copy_type(field: Field, connection) -> str:
    """The PostgreSQL type a binary COPY must send for this field's column ("varchar(255)" ->
    "varchar"): binary values are typed, so an int8 sent to an int4 column would be refused."""
    name = _COPY_TYPES.get(field)
    if name is None:
        db_type = re.sub(r"\(.*\)", "", field.db_type(connection) or "").strip()
        name = _COPY_TYPES[field] = _TYPE_NAMES.get(db_type, db_type)
    return name


_COPY_TYPES: dict[Field, str] = {}   # a field's column type does not change while the process runs


def _copy_constants(fields: list[Field], values: list, connection, binary: bool) -> tuple:
    """Values every row shares (defaults, auto_now times), made ready for COPY once."""
    dumps = [_copy_value(f, connection, binary) for f in fields]
    return tuple(v if d is None or v is None else d(v) for d, v in zip(dumps, values))


def _copy_rows(cursor, connection, table: str, fields: list[Field], rows: Iterable[Sequence],
               converters: list | None = None) -> None:
    """COPY `rows` (tuples in the order of `fields`) into `table`'s columns of those fields, in
    binary or text (_copy_binary). `converters`: one per field (None: the value as is), made
    for that format; by default _copy_value's."""
    qn = connection.ops.quote_name
    binary = _copy_binary(fields)
    sql = f"COPY {table} ({', '.join(qn(f.column) for f in fields)}) FROM STDIN"
    if binary:
        sql += " (FORMAT BINARY)"
    if converters is None:
        converters = [_copy_value(f, connection, binary) for f in fields]
    plain = all(c is None for c in converters)
    row = None
    try:
        with cursor.copy(sql) as copy:
            if binary:
                copy.set_types([_copy_type(f, connection) for f in fields])
            write = copy.write_row
            if plain:
                for row in rows:
                    write(row)
            else:
                for row in rows:
                    write([v if c is None else c(v) for v, c in zip(row, converters)])
    except (TypeError, ValueError, OverflowError) as exc:
        # A value of the wrong Python type (binary: a float for an integer, a naive time): name
        # the table, the columns and the row, which the dumper's own message does not.
        columns = ", ".join(f"{f.column} {_copy_type(f, connection)}" for f in fields)
        raise TypeError(f"COPY into {table} ({columns}): cannot write row {reprlib.repr(row)}: {exc}") from exc


def allocate_ids(model: type[models.Model], count: int) -> list[int] | None:
    """`count` fresh primary keys from the table's sequence in one round trip (PostgreSQL), or
    None where keys come only with the insert (SQLite)."""
    connection = connections[router.db_for_write(model)]
    if connection.vendor != "postgresql" or count <= 0:
        return [] if count <= 0 else None
    opts = model._meta
    with connection.cursor() as cursor:
        # The sequence looked up once per call (OFFSET 0 keeps the subquery from being folded
        # into the outer one): `nextval(pg_get_serial_sequence(…))` looks it up again for every id
        # and costs six times as much (3 ms per 1,000 ids).
        cursor.execute("SELECT nextval(q.s) FROM (SELECT pg_get_serial_sequence(%s, %s)::regclass AS s OFFSET 0) AS q, "
                       "generate_series(1, %s)", [opts.db_table, opts.pk.column, count])
        return [row[0] for row in cursor.fetchall()]


def bulk_insert(model: type[M], rows: Sequence[Sequence], *, fields: list[str], touch: dict | None = None,
                keys: bool = True) -> list[int]:
    """Insert new rows given as tuples of `fields` (attnames) and return their primary keys, in
    order. Other columns get `touch` values, auto_now times or their defaults. PostgreSQL: keys
    from the sequence, then one COPY into the table; SQLite: multi-row INSERT … RETURNING.
    `keys=False` (rows nobody refers to by their key: a log, barcodes, bindings): PostgreSQL
    numbers them itself during the COPY (one round trip less) and nothing is returned."""
    if not rows:
        return []
    alias = router.db_for_write(model)
    connection = connections[alias]
    opts = model._meta
    pk = opts.pk
    extra_fields, extra_values = _fill_values(model, fields, touch)
    by_attname = {f.attname: f for f in opts.concrete_fields}
    given = [by_attname[name] for name in fields]
    if connection.vendor == "postgresql" and not keys and pk.attname not in fields:
        binary = _copy_binary(given + extra_fields)
        converters = [_copy_value(f, connection, binary) for f in given] + [None] * len(extra_fields)
        extra = _copy_constants(extra_fields, extra_values, connection, binary)
        with transaction.atomic(using=alias, savepoint=False), connection.cursor() as cursor:
            _copy_rows(cursor, connection, connection.ops.quote_name(opts.db_table), given + extra_fields,
                       ((*row, *extra) for row in rows) if extra else rows, converters)
        return []
    if connection.vendor == "postgresql" and pk.attname not in fields:
        ids = allocate_ids(model, len(rows))
        binary = _copy_binary([pk, *given, *extra_fields])
        converters = [None] + [_copy_value(f, connection, binary) for f in given] + [None] * len(extra_fields)
        extra = _copy_constants(extra_fields, extra_values, connection, binary)
        with transaction.atomic(using=alias, savepoint=False), connection.cursor() as cursor:
            _copy_rows(cursor, connection, connection.ops.quote_name(opts.db_table), [pk, *given, *extra_fields],
                       ((i, *row, *extra) for i, row in zip(ids, rows)), converters)
        return ids
    names = [f.attname for f in given] + [f.attname for f in extra_fields]
    _lift_sqlite_limit(model)
    ids: list[int] = []
    with transaction.atomic(using=alias, savepoint=False), connection.cursor() as cursor:
        # a slice at a time: a row as a dict costs ~0.6 KB, and a full stock read logs 100,000s
        for part in chunked(rows, 10 * CHUNK):
            objs = [_Row(dict(zip(names, (*row, *extra_values)))) for row in part]
            for sql, params, batch, wants_ids in _statements(
                    connection, model, objs, given + extra_fields, "", 10 * CHUNK,
                    returning=connection.features.can_return_rows_from_bulk_insert, given=frozenset(names)):
                cursor.execute(sql, params)
                if wants_ids:
                    ids += [row[0] for row in connection.ops.fetch_returned_insert_rows(cursor)]
                else:   # a database that cannot return them: one insert at a time
                    raise NotImplementedError(f"{connection.vendor} cannot return inserted keys")
    if len(ids) != len(rows):
        raise RuntimeError(f"{opts.label}: {len(ids)} ids returned for {len(rows)} rows")
    return ids


def copy_to_temp(cursor, model: type[models.Model], fields: list[str], rows: Iterable[Sequence]) -> str:
    """PostgreSQL: COPY `rows` (tuples of `fields`, attnames of `model`) into a session temporary
    table shaped like those columns of the model's table and return its name, for one
    INSERT … SELECT to take them from (no WAL, no indexes, no constraint checks on the way in)."""
    connection = cursor.db
    by_attname = {f.attname: f for f in model._meta.concrete_fields}
    given = [by_attname[name] for name in fields]
    temp = _temp_table(cursor, connection, model, given)
    _copy_rows(cursor, connection, temp, given, rows)
    return temp


def _temp_table(cursor, connection, model, columns: list[Field]) -> str:
    """A session temporary table with these columns of the model's table, emptied."""
    qn = connection.ops.quote_name
    table = model._meta.db_table
    name = "_bulk_" + hashlib.sha1((table + "|" + ",".join(f.column for f in columns)).encode()).hexdigest()[:16]
    # One round trip: no parameters, so both statements go in one simple query.
    cursor.execute(f"CREATE TEMPORARY TABLE IF NOT EXISTS {name} AS SELECT "
                   + ", ".join(qn(f.column) for f in columns) + f" FROM {qn(table)} WITH NO DATA; TRUNCATE {name}")
    return name


def bulk_upsert(model: type[M], rows: Sequence[Sequence], *, fields: list[str], unique_fields: list[str],
                update_fields: list[str], touch: dict | None = None) -> UpsertResult:
    """Insert or update rows given as tuples of `fields` (attnames, the unique fields among them).

    An existing row is updated only when one of `update_fields` differs (IS DISTINCT FROM); then,
    and on insert, the `touch` values are written too (`{"updated_at": now}` moves only on a real
    change). Returns the keys inserted and the keys really updated. The unique fields must carry a
    unique constraint. One COPY and one statement on PostgreSQL."""
    if not rows:
        return UpsertResult([], [])
    alias = router.db_for_write(model)
    connection = connections[alias]
    opts = model._meta
    unknown = set(fields) - {f.attname for f in opts.concrete_fields}
    if unknown or not set(unique_fields) <= set(fields) or not set(update_fields) <= set(fields):
        raise TypeError(f"{opts.label}: bad fields {sorted(unknown)} (unique and update fields must be in `fields`)")
    by_attname = {f.attname: f for f in opts.concrete_fields}
    given = [by_attname[n] for n in fields]
    key_idx = [fields.index(n) for n in unique_fields]
    if connection.vendor == "postgresql":
        return _pg_upsert(connection, alias, model, rows, given, key_idx, [by_attname[n] for n in unique_fields],
                          [by_attname[n] for n in update_fields], touch or {})
    return _py_upsert(model, rows, fields, key_idx, unique_fields, update_fields, touch or {})


def _pg_upsert(connection, alias, model, rows, given, key_idx, unique, update, touch) -> UpsertResult:
    qn = connection.ops.quote_name
    table = qn(model._meta.db_table)
    extra_fields, extra_values = _fill_values(model, [f.attname for f in given], touch)
    touch_fields = [f for f in extra_fields if f.attname in touch]
    columns = [qn(f.column) for f in given] + [qn(f.column) for f in extra_fields]
    select = [f"s.{qn(f.column)}" for f in given] + ["%s"] * len(extra_fields)
    sets = [f"{qn(f.column)} = EXCLUDED.{qn(f.column)}" for f in update + touch_fields]
    differs = (" OR ".join(f"t.{qn(f.column)} IS DISTINCT FROM EXCLUDED.{qn(f.column)}" for f in update)
               or "FALSE")
    keys = ", ".join(f"t.{qn(f.column)}" for f in unique)
    with transaction.atomic(using=alias, savepoint=False), connection.cursor() as cursor:
        temp = copy_to_temp(cursor, model, [f.attname for f in given], rows)
        # The JSON encoding of JSONField values happened in COPY; hand the rest as parameters.
        params = [json.dumps(v, ensure_ascii=False) if isinstance(f, models.JSONField) and v is not None else v
                  for f, v in zip(extra_fields, extra_values)]
        cursor.execute(
            f"INSERT INTO {table} AS t ({', '.join(columns)}) SELECT {', '.join(select)} FROM {temp} s "
            f"ON CONFLICT ({', '.join(qn(f.column) for f in unique)}) DO UPDATE SET {', '.join(sets)} "
            f"WHERE {differs} RETURNING {keys}, (t.xmax = 0)", params)
        inserted, updated = [], []
        for row in cursor.fetchall():
            (inserted if row[-1] else updated).append(tuple(row[:-1]))
    return UpsertResult(inserted, updated)


def _py_upsert(model, rows, fields, key_idx, unique_fields, update_fields, touch) -> UpsertResult:
    """SQLite (and any other database): read the rows these keys already have, compare, write the
    new and the changed ones with one multi-row upsert per chunk."""
    update_idx = [fields.index(n) for n in update_fields]
    keys = [tuple(row[i] for i in key_idx) for row in rows]
    current: dict[tuple, tuple] = {}
    manager = model._default_manager
    if len(unique_fields) == 1:
        name = unique_fields[0]
        for values in in_chunks(lambda chunk: manager.filter(**{f"{name}__in": chunk}).values_list(
                name, *update_fields), [k[0] for k in keys]):
            current[(values[0],)] = tuple(values[1:])
    else:
        # Each key field IN its values (a superset, one query a chunk), then the exact keys here.
        wanted = set(keys)
        n = len(unique_fields)
        for chunk in chunked(keys, CHUNK):
            lookup = {f"{name}__in": {k[i] for k in chunk} for i, name in enumerate(unique_fields)}
            for values in manager.filter(**lookup).values_list(*unique_fields, *update_fields):
                if tuple(values[:n]) in wanted:
                    current[tuple(values[:n])] = tuple(values[n:])
    inserted, updated, write = [], [], []
    written = list(update_fields) + [n for n in touch if n not in update_fields]
    # written a slice at a time (a row as a dict costs ~0.6 KB), all in one transaction
    with transaction.atomic(using=router.db_for_write(model), savepoint=False):
        for key, row in zip(keys, rows):
            old = current.get(key)
            if old is None:
                inserted.append(key)
            elif any(not _same(old[n], row[i]) for n, i in enumerate(update_idx)):
                updated.append(key)
            else:
                continue
            write.append(dict(zip(fields, row), **touch))
            if len(write) >= 10 * CHUNK:
                _write_rows(model, write, update_conflicts=True, unique_fields=unique_fields, update_fields=written)
                write = []
        if write:
            _write_rows(model, write, update_conflicts=True, unique_fields=unique_fields, update_fields=written)
    return UpsertResult(inserted, updated)


def _same(stored, new) -> bool:
    """Equal as the database would compare them (Decimal 1 == 1.00; an id vs its integer)."""
    if stored == new:
        return True
    if isinstance(stored, Decimal) or isinstance(new, Decimal):
        try:
            return stored is not None and new is not None and Decimal(str(stored)) == Decimal(str(new))
        except ArithmeticError:
            return False
    return False


def bulk_update(model: type[M], rows: Sequence[Sequence], *, fields: list[str], key: str = "id",
                touch: dict | None = None) -> list:
    """Update existing rows given as tuples (key, *fields) where a field really differs; `touch`
    values are written with them. Returns the keys updated. Unlike bulk_upsert it never inserts,
    so rows may leave out columns a new row would need. PostgreSQL: one COPY, one UPDATE … FROM."""
    if not rows:
        return []
    alias = router.db_for_write(model)
    connection = connections[alias]
    opts = model._meta
    by_attname = {f.attname: f for f in opts.concrete_fields}
    given = [by_attname[key]] + [by_attname[n] for n in fields]
    touch = touch or {}
    if connection.vendor == "postgresql":
        qn = connection.ops.quote_name
        sets = [f"{qn(f.column)} = s.{qn(f.column)}" for f in given[1:]]
        sets += [f"{qn(by_attname[n].column)} = %s" for n in touch]
        differs = " OR ".join(f"t.{qn(f.column)} IS DISTINCT FROM s.{qn(f.column)}" for f in given[1:])
        k = qn(given[0].column)
        with transaction.atomic(using=alias, savepoint=False), connection.cursor() as cursor:
            temp = _temp_table(cursor, connection, model, given)
            _copy_rows(cursor, connection, temp, given, rows)
            cursor.execute(f"UPDATE {qn(opts.db_table)} AS t SET {', '.join(sets)} FROM {temp} s "
                           f"WHERE t.{k} = s.{k} AND ({differs}) RETURNING t.{k}", list(touch.values()))
            return [row[0] for row in cursor.fetchall()]
    current = {values[0]: values[1:] for values in in_chunks(
        lambda chunk: model._default_manager.filter(**{f"{key}__in": chunk}).values_list(key, *fields),
        [row[0] for row in rows])}
    changed = [row for row in rows if row[0] in current
               and any(not _same(old, new) for old, new in zip(current[row[0]], row[1:]))]
    if changed:
        objs = []
        for row in changed:
            obj = model(**{key: row[0]})
            for name, value in zip(fields, row[1:]):
                setattr(obj, name, value)
            for name, value in touch.items():
                setattr(obj, name, value)
            objs.append(obj)
        model._default_manager.bulk_update(objs, [*fields, *touch], batch_size=500)
    return [row[0] for row in changed]
