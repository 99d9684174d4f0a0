"""The domain's one stock write path, and the stock computations the rest of the system relies on.

Every figure that reaches `StockLevel` comes through here, whoever read it (MoySklad today;
suppliers, 1C and marketplace orders next):

* `stock_levels_set` takes absolute (stock, reserve) figures for one warehouse from the upstream
  that owns it and keeps `available = max(stock − reserve − active holds, 0)`. Only real changes
  are written (`updated_at` moves only then; an unchanged level just gets `checked_at`), each
  real change is logged as one `StockChange`, and after commit the one stock-changed hook runs.
* Holds (`StockHold`) are the units open orders keep: `stock_allocate` chooses the one warehouse
  an order reserves from, `stock_holds_place` / `stock_holds_release` / `stock_holds_hand_over`
  move them through their lifecycle (see `StockHold`). Placing or releasing a hold recomputes
  `available` the same way and calls the same hook.
* `stock_changed` is that hook: a single greppable call into integrations (the debounced
  marketplace push, and whatever else must follow a change of what we can sell).

Concurrency: a level is changed only under its row lock (PostgreSQL `SELECT … FOR UPDATE`, taken
in id order as order creation does; on SQLite the IMMEDIATE transaction serializes writers), and
its holds are read after the lock, so a hold placed while a sync runs is never overwritten.
"""
from __future__ import annotations

import logging
import math
from collections import defaultdict

from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from functools import partial
from typing import Iterable, Mapping, NamedTuple, Sequence

from django.db import IntegrityError, connections, router, transaction
from django.db.models import Sum
from django.utils import timezone

from syncsite.bulk import CHUNK, bulk_insert, bulk_upsert, chunked, copy_to_temp, in_chunks, lookup_chunk

from .models import StockChange, StockHold, StockLevel, Warehouse
from .policies import PublishPolicy

log = logging.getLogger("syncsite.stock")

try:  # COPY talks to psycopg directly: its errors arrive unwrapped by Django
    from psycopg import IntegrityError as _PsycopgIntegrityError
    _UNIQUE_VIOLATIONS: tuple[type[Exception], ...] = (IntegrityError, _PsycopgIntegrityError)
except ImportError:  # pragma: no cover - SQLite-only installs
    _UNIQUE_VIOLATIONS = (IntegrityError,)

ZERO = Decimal(0)
#: above this many figures, one query reads the whole warehouse instead of looking the offers up
WHOLE_WAREHOUSE_READ = 50_000
#: above this many "maybe back in stock" offers, one query reads every positive level elsewhere
WHOLE_TABLE_READ = 5_000


@dataclass(frozen=True)
class StockWriteResult:
    changed: list[int]        # offer ids whose level in this warehouse really changed
    restocked: list[int]      # offer ids whose TOTAL available went from 0 to > 0
    unchanged: int
    created: int


@dataclass(frozen=True)
class HoldRequest:
    offer_id: int
    warehouse_id: int
    quantity: Decimal
    ref: str


class StockShortError(Exception):
    """No allowed warehouse holds the whole order. `line` (0-based), `available` and `requested`
    describe the first short line in the best warehouse; `single_store` is True when the order
    would fit if it could be split across warehouses (it cannot: one order, one warehouse)."""

    def __init__(self, *, line: int, available: Decimal, requested: Decimal, warehouse_id: int | None,
                 single_store: bool):
        self.line, self.available, self.requested = line, available, requested
        self.warehouse_id, self.single_store = warehouse_id, single_store
        super().__init__(f"line {line}: {available} available in the best warehouse, {requested} requested")


# ------------------------------------------------------------------------------------------------
# Warehouses
# ------------------------------------------------------------------------------------------------
def warehouse_ensure(*, code: str, name: str, source: str) -> Warehouse:
    """The warehouse with this stable code (`supplier:acme`, `1c:Основной`, `1c`), created on first
    use. An existing one keeps its code and source; its name follows the upstream's."""
    code, name = code.strip()[:64], (name.strip() or code.strip())[:255]
    if not code:
        raise ValueError("a warehouse needs a code")
    found = Warehouse.objects.filter(code=code).first()
    if found is None:
        try:
            with transaction.atomic():
                return Warehouse.objects.create(code=code, name=name, source=source[:64])
        except IntegrityError:  # created by a concurrent caller
            found = Warehouse.objects.get(code=code)
    if found.name != name:
        found.name = name
        found.save(update_fields=["name", "updated_at"])
    return found


def warehouse_ships_orders_set(*, warehouse_id: int | None) -> None:
    """Mark the warehouse site orders reserve from first (None: no preference). Exactly one."""
    with transaction.atomic():
        Warehouse.objects.filter(ships_orders=True).exclude(pk=warehouse_id).update(ships_orders=False)
        if warehouse_id is not None:
            Warehouse.objects.filter(pk=warehouse_id, ships_orders=False).update(ships_orders=True)


# ------------------------------------------------------------------------------------------------
# Levels from an upstream
# ------------------------------------------------------------------------------------------------
class _Change(NamedTuple):
    offer_id: int
    warehouse_id: int
    prev: tuple[Decimal, Decimal, Decimal]   # stock, reserve, available
    new: tuple[Decimal, Decimal, Decimal]


def stock_levels_set(*, warehouse_id: int, figures: Mapping[int, tuple[Decimal, Decimal]], source: str,
                     via: str = "sync", complete: bool = False,
                     checked_at: datetime | None = None) -> StockWriteResult:
    """Set the absolute figures `figures` = {offer id: (stock, reserve)} of one warehouse, as its
    upstream `source` reported them (`reserve` 0 for sources without one); `via` says how they
    came (sync, full, webhook, live, exchange, …).

    `complete=True` (a full read): levels `source` holds in this warehouse that `figures` omits
    become 0. `checked_at` is when the upstream read STARTED (default now): holds handed over to
    `source` before that moment are counted by its reserve now, so they are released here."""
    now = timezone.now()
    checked_at = checked_at or now
    with transaction.atomic():
        whole = complete or len(figures) > WHOLE_WAREHOUSE_READ
        current = _levels(warehouse_id, None if whole else list(figures))
        target: Mapping[int, tuple[Decimal, Decimal]] = figures
        if complete:  # copied only when something is added (a full read holds 100,000s of figures)
            gone = [offer_id for offer_id, row in current.items() if row[4] == source and offer_id not in figures]
            if gone:
                target = {**figures, **dict.fromkeys(gone, (ZERO, ZERO))}
        held, handed = _holds(warehouse_id, source=source, before=checked_at)

        plan, releases = _plan(target, current, held, handed, checked_at)
        # Lock the existing rows we are about to change (id order, as order creation does), then
        # decide again from what they hold now and from the holds committed meanwhile.
        locked_ids = sorted(current[o][0] for o in plan if o in current)
        if locked_ids and _locks_rows():
            current.update(_levels_locked(locked_ids))
            held, handed = _holds(warehouse_id, source=source, before=checked_at)
            again = {o: target[o] for o in plan}
            replan, rereleases = _plan(again, current, held, handed, checked_at)
            for offer_id in again:
                plan.pop(offer_id, None)
                releases.pop(offer_id, None)
            plan.update(replan)
            releases.update(rereleases)

        zeros = (ZERO, ZERO, ZERO)
        changes: list[_Change] = []
        created = 0
        for offer_id, figures_now in plan.items():
            row = current.get(offer_id)
            if row is None:
                created += 1
                prev = zeros
            else:
                prev = (row[1], row[2], row[3])
            if prev != figures_now:
                changes.append(_Change(offer_id, warehouse_id, prev, figures_now))
        # Unchanged levels were read just now: stamp them (QuerySet.update leaves updated_at alone).
        if complete:
            StockLevel.objects.filter(warehouse_id=warehouse_id, source=source).update(checked_at=checked_at)
        else:
            fresh = [o for o in target if o not in plan and o in current]
            for chunk in chunked(fresh, lookup_chunk(StockLevel)):
                StockLevel.objects.filter(warehouse_id=warehouse_id, offer_id__any=chunk).update(checked_at=checked_at)
        logged = _write_levels(warehouse_id, plan, source=source, via=via, checked_at=checked_at, now=now,
                               new={o for o in plan if o not in current})
        released = [hold_id for ids in releases.values() for hold_id in ids]
        for chunk in chunked(released, CHUNK):
            StockHold.objects.filter(pk__in=chunk, released_at__isnull=True).update(
                released_at=now, release_reason="synced")
        changed, restocked = _record(changes, source=source, via=via, at=now, logged=logged)
    if released:
        log.info("stock.holds.synced warehouse=%s source=%s released=%s", warehouse_id, source, len(released))
    return StockWriteResult(changed=changed, restocked=restocked, unchanged=len(target) - len(plan), created=created)


def _write_levels(warehouse_id: int, plan: Mapping[int, tuple], *, source: str, via: str, checked_at: datetime,
                  now: datetime, new: set[int] | frozenset[int] = frozenset()) -> frozenset[int]:
    """Insert or overwrite these levels: {offer id: (stock, reserve, available)}; `new` names the
    offers that had no level here when we read. Returns the offers whose change is logged already.

    On PostgreSQL many new levels (a first full read) travel once: COPY into a temporary table,
    then one statement inserts them and logs each non-zero one as a change (from 0) — half the
    rows to format and send of two COPYs. Should another writer create one of the "new" levels
    meanwhile, that statement fails whole (its savepoint rolls back) and everything takes the
    upsert, logged as usual. The rest go through one COPY into a temporary table and one
    INSERT … ON CONFLICT (syncsite.bulk)."""
    fields = ["offer_id", "warehouse_id", "stock", "reserve", "available", "source", "checked_at", "updated_at"]
    straight = len(new) >= 1_000 and connections[router.db_for_write(StockLevel)].vendor == "postgresql"
    logged: frozenset[int] = frozenset()
    if straight:  # the new levels stream from the plan into the COPY (a full read plans 100,000s)
        try:
            with transaction.atomic():
                _insert_new_logged(((o, warehouse_id, *f) for o, f in plan.items() if o in new), source=source, via=via,
                                   checked_at=checked_at, now=now)
            logged = frozenset(new)
        except _UNIQUE_VIOLATIONS:
            straight = False
    rows = [(offer_id, warehouse_id, stock, reserve, available, source, checked_at, now)
            for offer_id, (stock, reserve, available) in plan.items() if not straight or offer_id not in new]
    if rows:
        bulk_upsert(StockLevel, rows, fields=fields, unique_fields=["offer_id", "warehouse_id"],
                    update_fields=["stock", "reserve", "available", "source", "checked_at", "updated_at"])
    return logged


def _insert_new_logged(rows: Iterable[tuple], *, source: str, via: str, checked_at: datetime, now: datetime) -> None:
    """PostgreSQL: new levels (offer, warehouse, stock, reserve, available) in, and their changes
    from 0 logged, by one statement over one COPY."""
    level, change = StockLevel._meta.db_table, StockChange._meta.db_table
    with connections[router.db_for_write(StockLevel)].cursor() as cursor:
        temp = copy_to_temp(cursor, StockLevel, ["offer_id", "warehouse_id", "stock", "reserve", "available"], rows)
        cursor.execute(
            f"WITH ins AS (INSERT INTO {level} (offer_id, warehouse_id, stock, reserve, available, source, "
            f"checked_at, updated_at) SELECT offer_id, warehouse_id, stock, reserve, available, %s, %s, %s "
            f"FROM {temp} RETURNING offer_id, warehouse_id, stock, reserve, available) "
            f"INSERT INTO {change} (offer_id, warehouse_id, source, via, previous_stock, new_stock, "
            f"previous_reserve, new_reserve, previous_available, new_available, at) "
            f"SELECT offer_id, warehouse_id, %s, %s, 0, stock, 0, reserve, 0, available, %s FROM ins "
            f"WHERE stock <> 0 OR reserve <> 0 OR available <> 0",
            [source, checked_at, now, source[:64], via[:16], now])


def _write_log(changes: list[_Change], *, source: str, via: str, at: datetime) -> None:
    """One StockChange row per change: one COPY on PostgreSQL."""
    source, via = source[:64], via[:16]
    bulk_insert(StockChange, [(c.offer_id, c.warehouse_id, source, via, c.prev[0], c.new[0], c.prev[1], c.new[1],
                               c.prev[2], c.new[2], at) for c in changes],
                fields=["offer_id", "warehouse_id", "source", "via", "previous_stock", "new_stock", "previous_reserve",
                        "new_reserve", "previous_available", "new_available", "at"], keys=False)


def _levels(warehouse_id: int, offer_ids: list[int] | None) -> dict[int, list]:
    """{offer id: [level id, stock, reserve, available, source]} of one warehouse."""
    fields = ("offer_id", "pk", "stock", "reserve", "available", "source")
    if offer_ids is None:
        rows = StockLevel.objects.filter(warehouse_id=warehouse_id).values_list(*fields)
    else:
        rows = in_chunks(lambda chunk: StockLevel.objects.filter(warehouse_id=warehouse_id, offer_id__any=chunk)
                         .values_list(*fields), offer_ids, size=lookup_chunk(StockLevel))
    return {r[0]: list(r[1:]) for r in rows}


def _levels_locked(level_ids: list[int]) -> dict[int, list]:
    out: dict[int, list] = {}
    for chunk in chunked(level_ids, lookup_chunk(StockLevel)):
        for r in (StockLevel.objects.select_for_update().filter(pk__any=chunk).order_by("pk")
                  .values_list("offer_id", "pk", "stock", "reserve", "available", "source")):
            out[r[0]] = list(r[1:])
    return out


def _locks_rows() -> bool:
    return connections[router.db_for_write(StockLevel)].features.has_select_for_update


def _holds(warehouse_id: int, *, source: str, before: datetime) -> tuple[dict[int, Decimal], dict[int, list]]:
    """Active holds on this warehouse: ({offer id: units held}, {offer id: [(hold id, units,
    counted_from)] of holds handed over to `source` before `before`}). The latter are the ones a
    read by `source` that started at `before` may already count in its reserve."""
    held: dict[int, Decimal] = {}
    handed: dict[int, list] = defaultdict(list)
    for hold_id, offer_id, qty, handed_at, handed_to, counted_from in StockHold.objects.filter(
            warehouse_id=warehouse_id, released_at__isnull=True).values_list(
            "pk", "offer_id", "quantity", "handed_over_at", "handed_over_to", "counted_from"):
        if handed_at is not None and handed_to == source and handed_at < before:
            handed[offer_id].append((hold_id, qty, counted_from or handed_at))
        else:
            held[offer_id] = held.get(offer_id, ZERO) + qty
    return held, handed


def _plan(target: Mapping[int, tuple[Decimal, Decimal]], current: Mapping[int, list], held: Mapping[int, Decimal],
          handed: Mapping[int, list], read_at: datetime) -> tuple[dict[int, tuple], dict[int, list[int]]]:
    """({offer id: (stock, reserve, available)} for the levels that must be written — new ones and
    those whose figures differ from what we hold —, {offer id: [ids of holds this read ends]}).

    A hold handed over to this upstream ends with this read when the read surely counts it (it
    started after the hold's `counted_from`) or when the read's reserve rose by the handed-over
    units since our last figure (the upstream already recalculated)."""
    out: dict[int, tuple] = {}
    releases: dict[int, list[int]] = {}
    for offer_id, (stock, reserve) in target.items():
        if type(stock) is not Decimal or type(reserve) is not Decimal:
            stock, reserve = Decimal(stock), Decimal(reserve)
        row = current.get(offer_id)
        available = stock - reserve if reserve else stock   # most reserves are 0: no new Decimal
        if offer_id in held:
            available -= held[offer_id]
        if offer_id in handed:
            ended, pending = [], ZERO
            maybe, maybe_qty = [], ZERO
            for hold_id, qty, counted_from in handed[offer_id]:
                if counted_from <= read_at:
                    ended.append(hold_id)
                else:
                    maybe.append(hold_id)
                    maybe_qty += qty
            if maybe and reserve - (row[2] if row is not None else ZERO) >= maybe_qty:
                ended += maybe
            else:
                pending = maybe_qty
            available -= pending
            if ended:
                releases[offer_id] = ended
        if available < 0:
            available = ZERO
        if row is None or row[1] != stock or row[2] != reserve or row[3] != available:
            out[offer_id] = (stock, reserve, available)
    return out, releases


def _record(changes: list[_Change], *, source: str, via: str, at: datetime,
            logged: frozenset[int] = frozenset()) -> tuple[list[int], list[int]]:
    """Log the changes (but those of the offers in `logged`, written with their levels), work out
    which offers came back in stock, and call the hook after commit. Returns (changed offer ids,
    restocked offer ids)."""
    if not changes:
        return [], []
    _write_log([c for c in changes if c.offer_id not in logged] if logged else changes, source=source, via=via, at=at)
    changed = sorted({c.offer_id for c in changes})
    restocked = _restocked(changes)
    transaction.on_commit(partial(stock_changed, offer_ids=changed, restocked=restocked), robust=True)
    return changed, restocked


def _restocked(changes: list[_Change]) -> list[int]:
    """Offers whose available summed over every warehouse went from 0 to more than 0."""
    warehouses = {c.warehouse_id for c in changes}
    if len(warehouses) == 1:  # one level per offer (a stock write): no sums needed
        candidates = [c.offer_id for c in changes if c.prev[2] <= 0 < c.new[2]]
    else:
        before: dict[int, Decimal] = defaultdict(lambda: ZERO)
        after: dict[int, Decimal] = defaultdict(lambda: ZERO)
        for c in changes:
            before[c.offer_id] += c.prev[2]
            after[c.offer_id] += c.new[2]
        candidates = [o for o in after if before[o] <= 0 < after[o]]
    if not candidates:
        return []
    touched = {(c.offer_id, c.warehouse_id) for c in changes}
    elsewhere: set[int] = set()
    if len(candidates) > WHOLE_TABLE_READ and len(warehouses) == 1:
        elsewhere = set(StockLevel.objects.filter(available__gt=0).exclude(warehouse_id__in=warehouses)
                        .values_list("offer_id", flat=True))
    else:
        for offer_id, warehouse_id in in_chunks(lambda chunk: StockLevel.objects.filter(
                offer_id__any=chunk, available__gt=0).values_list("offer_id", "warehouse_id"), candidates,
                size=lookup_chunk(StockLevel)):
            if (offer_id, warehouse_id) not in touched:
                elsewhere.add(offer_id)
    return sorted(o for o in candidates if o not in elsewhere)


# ------------------------------------------------------------------------------------------------
# Holds
# ------------------------------------------------------------------------------------------------
def stock_allocate(*, lines: Sequence[tuple[int, Decimal]], warehouse_ids: Iterable[int],
                   preferred: Sequence[int] = (), enforce: bool = True) -> int | None:
    """The ONE warehouse an order reserves from: the first of `preferred` that holds every line,
    else the warehouse (of `warehouse_ids`) with the most available that holds every line.
    `lines` is [(offer id, quantity)] in the order's line order.

    Locks the levels involved (call inside the transaction that then places the holds), so the
    answer stays true until commit. Raises `StockShortError` when no single warehouse holds the
    whole order; with `enforce=False` (an order a marketplace already sold) it returns the
    warehouse that holds the most of it instead (None when there is no warehouse at all)."""
    candidates = sorted(set(warehouse_ids))
    need: dict[int, Decimal] = defaultdict(lambda: ZERO)
    for offer_id, qty in lines:
        need[offer_id] += Decimal(qty)
    avail: dict[int, dict[int, Decimal]] = {w: {} for w in candidates}
    if candidates and need:
        for warehouse_id, offer_id, available in (
                StockLevel.objects.select_for_update().filter(offer_id__in=sorted(need), warehouse_id__in=candidates)
                .order_by("pk").values_list("warehouse_id", "offer_id", "available")):
            avail[warehouse_id][offer_id] = max(available, ZERO)

    def covers(w: int) -> bool:
        return all(avail[w].get(o, ZERO) >= q for o, q in need.items())

    for w in preferred:
        if w in avail and covers(w):
            return w
    rank = {w: i for i, w in enumerate(preferred)}

    def key(w: int):
        served = sum((min(avail[w].get(o, ZERO), q) for o, q in need.items()), ZERO)
        total = sum((avail[w].get(o, ZERO) for o in need), ZERO)
        return (covers(w), served, total, -rank.get(w, math.inf), -w)

    best = max(candidates, key=key) if candidates else None
    if best is not None and covers(best):
        return best
    if not enforce:
        return best
    everywhere = {o: sum((avail[w].get(o, ZERO) for w in candidates), ZERO) for o in need}
    for i, (offer_id, qty) in enumerate(lines):
        here = avail[best].get(offer_id, ZERO) if best is not None else ZERO
        if here < need[offer_id]:
            raise StockShortError(line=i, available=here, requested=Decimal(qty), warehouse_id=best,
                                  single_store=all(everywhere[o] >= q for o, q in need.items()))
    raise AssertionError("a warehouse that does not cover the order has a short line")  # pragma: no cover


def stock_holds_place(*, holds: Sequence[HoldRequest], source: str, via: str = "order") -> StockWriteResult:
    """Hold units for an order (after `stock_allocate` chose the warehouse, in the same
    transaction). Each hold lowers its level's `available` at once; `source` is where the order
    came from (site, ozon, …)."""
    holds = [h for h in holds if Decimal(h.quantity) > 0]
    if not holds:
        return StockWriteResult([], [], 0, 0)
    with transaction.atomic():
        pairs = {(h.offer_id, h.warehouse_id) for h in holds}
        levels = _lock_pairs(pairs)
        StockHold.objects.bulk_create([StockHold(offer_id=h.offer_id, warehouse_id=h.warehouse_id,
                                                 quantity=Decimal(h.quantity), ref=h.ref[:64], source=source[:64])
                                       for h in holds])
        return _recount(levels, source=source, via=via)


def stock_holds_release(*, refs: Iterable[str], reason: str, source: str = "", via: str = "order") -> StockWriteResult:
    """End the holds of these refs that were never handed over (an order cancelled before its
    warehouse's upstream reserved it, or shipped from a warehouse whose upstream never does):
    their units count as available again at once. Handed-over holds stay until the upstream's
    next read releases them (its reserve still counts them until then)."""
    refs = list(refs)
    with transaction.atomic():
        active = list(StockHold.objects.filter(ref__in=refs, released_at__isnull=True, handed_over_at__isnull=True)
                      .values_list("pk", "offer_id", "warehouse_id"))
        if not active:
            return StockWriteResult([], [], 0, 0)
        levels = _lock_pairs({(o, w) for _pk, o, w in active})
        StockHold.objects.filter(pk__in=[pk for pk, _o, _w in active], released_at__isnull=True).update(
            released_at=timezone.now(), release_reason=reason[:32])
        return _recount(levels, source=source or reason, via=via)


def stock_holds_hand_over(*, refs: Iterable[str], to: str, at: datetime | None = None,
                          counted_from: datetime | None = None) -> int:
    """The upstream `to` now reserves these refs' units itself (an order exported to MoySklad with
    reserve, at `at`, default now). Only holds on warehouses `to` owns are handed over. They stay
    subtracted until a read by `to` that started after the hand-over is applied to their level
    and counts them: surely once it started after `counted_from` (default: the hand-over; later
    for an upstream that recalculates its reports a little after a document changes), or
    earlier when its reserve rose by the held units. Returns how many holds were handed over.
    `available` does not change here."""
    at = at or timezone.now()
    return StockHold.objects.filter(ref__in=list(refs), released_at__isnull=True, handed_over_at__isnull=True,
                                    warehouse__source=to).update(handed_over_at=at, handed_over_to=to[:64],
                                                                 counted_from=max(at, counted_from or at))


def _lock_pairs(pairs: set[tuple[int, int]]) -> list[StockLevel]:
    """The levels of these (offer, warehouse) pairs, row-locked in id order."""
    offers = sorted({o for o, _w in pairs})
    warehouses = sorted({w for _o, w in pairs})
    rows = (StockLevel.objects.select_for_update().filter(offer_id__in=offers, warehouse_id__in=warehouses)
            .order_by("pk"))
    return [lv for lv in rows if (lv.offer_id, lv.warehouse_id) in pairs]


def _recount(levels: list[StockLevel], *, source: str, via: str) -> StockWriteResult:
    """available = max(stock − reserve − active holds, 0) for these (locked) levels, written and
    logged where it changed."""
    if not levels:
        return StockWriteResult([], [], 0, 0)
    held = defaultdict(lambda: ZERO)
    for row in (StockHold.objects.filter(released_at__isnull=True, offer_id__in={lv.offer_id for lv in levels},
                                         warehouse_id__in={lv.warehouse_id for lv in levels})
                .values("offer_id", "warehouse_id").annotate(total=Sum("quantity"))):
        held[(row["offer_id"], row["warehouse_id"])] = row["total"]
    now = timezone.now()
    changes, dirty = [], []
    for lv in levels:
        available = max(lv.stock - lv.reserve - held[(lv.offer_id, lv.warehouse_id)], ZERO)
        if available != lv.available:
            changes.append(_Change(lv.offer_id, lv.warehouse_id, (lv.stock, lv.reserve, lv.available),
                                   (lv.stock, lv.reserve, available)))
            lv.available, lv.updated_at = available, now
            dirty.append(lv)
    if dirty:
        StockLevel.objects.bulk_update(dirty, ["available", "updated_at"])
    changed, restocked = _record(changes, source=source, via=via, at=now)
    return StockWriteResult(changed=changed, restocked=restocked, unchanged=len(levels) - len(dirty), created=0)


# ------------------------------------------------------------------------------------------------
# The hook
# ------------------------------------------------------------------------------------------------
def stock_changed(*, offer_ids: Sequence[int], restocked: Sequence[int] = ()) -> None:
    """What we can sell of these offers changed (runs after the change committed); `restocked`
    are those whose total available went from 0 to more than 0."""
    if not offer_ids and not restocked:
        return
    from integrations.jobs import stock_changed as integrations_stock_changed  # the one call into integrations

    integrations_stock_changed(offer_ids=list(offer_ids), restocked=list(restocked))


# ------------------------------------------------------------------------------------------------
# Computations
# ------------------------------------------------------------------------------------------------
def stock_quantity_to_publish(*, available_by_warehouse: Mapping[int, Decimal],
                              groups: Mapping[str, frozenset[int]], policy: PublishPolicy,
                              reserved: Decimal | int = 0, enabled: bool = True) -> dict[str, int]:
    """{channel warehouse key: whole units to publish} for one offer.

    `groups` maps each warehouse the channel publishes to onto the set of our warehouses that
    feed it; `available_by_warehouse` is the offer's available (stock − reserve − holds) per
    warehouse of ours. Units held by open orders that the stock figures do not count yet
    (`reserved`) come off the largest pile first, so a single-warehouse channel simply loses them.
    Each pile then goes through the policy (buffer, floor, cap, API maximum); an absurd figure
    raises `AbsurdQuantityError` for the caller to record instead of publishing."""
    piles = {key: sum((Decimal(available_by_warehouse.get(w, 0)) for w in warehouses), Decimal(0))
             for key, warehouses in groups.items()}
    remaining = Decimal(reserved or 0)
    for key in sorted(piles, key=lambda k: piles[k], reverse=True):
        if remaining <= 0:
            break
        taken = min(max(piles[key], Decimal(0)), remaining)
        piles[key] -= taken
        remaining -= taken
    return {key: policy.quantity(qty, enabled=enabled) for key, qty in piles.items()}
