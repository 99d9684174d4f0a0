"""Order writes: create (with stock reservation), status changes, shipments, cancellation.

Where reservations live and why is explained in `orders/models.py`. The rules here:

* `order_create` is the only place that takes stock for an order. It locks the offers'
  `StockLevel` rows in id order (PostgreSQL row locks; on SQLite the IMMEDIATE transaction mode
  already serializes writers), so two orders for the last unit cannot both pass the check: the
  second waits, then sees the lowered figure and gets `InsufficientStock`.
* The idempotency key is a unique column. A replay finds the stored order; two racing requests
  with the same key end with one order (the loser hits the constraint and reads the winner's).
* A status change writes one history row and, after commit, owes the customer one e-mail. Setting
  the status an order already has writes nothing, so replays and duplicate events mail no one.
* Domain code never imports a channel: after commit `order_create` makes a single call into
  `integrations.jobs.order_created` (the export kick; the `orders-export` job is the outbox that
  catches a kick the broker lost).
"""
from __future__ import annotations

import hashlib
import json
import logging
import re
from dataclasses import dataclass
from datetime import timedelta
from decimal import Decimal, InvalidOperation
from functools import partial
from typing import Iterable, Mapping, Sequence

from django.db import IntegrityError, transaction
from django.db.models import F, Q
from django.utils import timezone

from catalog.models import Offer
from stock.models import StockLevel
from syncsite.leases import Lease

from .models import (
    Customer,
    ExportState,
    Order,
    OrderLine,
    OrderSource,
    OrderStatus,
    OrderStatusChange,
    Reservation,
)

log = logging.getLogger("syncsite.orders")

MAX_LINES = 200
MAX_QUANTITY = Decimal(100_000)
# International numbers have at most 15 digits; the rest is room for an extension.
MAX_PHONE_DIGITS = 20
NUMBER_PREFIX = {OrderSource.SITE: "S", OrderSource.OZON: "OZ", OrderSource.WB: "WB", OrderSource.YM: "YM"}
# The forward path of an order. Cancelled and returned stand outside it.
PROGRESS = (OrderStatus.PENDING, OrderStatus.CONFIRMED, OrderStatus.PROCESSING, OrderStatus.PARTIALLY_SHIPPED,
            OrderStatus.SHIPPED, OrderStatus.COMPLETED)
_EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")


# ------------------------------------------------------------------------------------------------
# Errors: named by what the caller does (show the customer which line is wrong, or what is left)
# ------------------------------------------------------------------------------------------------
class OrderError(Exception):
    pass


class OrderInvalid(OrderError):
    """The request is wrong; `line` (0-based) and `field` say where."""

    def __init__(self, detail: str, *, line: int | None = None, field: str | None = None):
        super().__init__(detail)
        self.detail, self.line, self.field = detail, line, field


class IdempotencyMismatch(OrderError):
    """The idempotency key belongs to an order placed with a different request. Its details are
    never revealed: the caller gets no order back."""


class InsufficientStock(OrderError):
    def __init__(self, *, sku: str, available: Decimal, requested: Decimal, line: int):
        super().__init__(f"line {line}: only {_num(available)} of {sku} available, {_num(requested)} requested")
        self.sku, self.available, self.requested, self.line = sku, available, requested, line


def _num(value: Decimal) -> str:
    """3.000 -> "3", 2.500 -> "2.5" (messages people read)."""
    return f"{Decimal(value).normalize():f}"


# ------------------------------------------------------------------------------------------------
# Input
# ------------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class CustomerData:
    name: str
    email: str = ""
    phone: str = ""


@dataclass(frozen=True)
class LineRequest:
    sku: str
    quantity: Decimal | int
    price: Decimal | None = None  # marketplace orders carry their own price; site orders use ours


@dataclass(frozen=True)
class OrderCreated:
    order: Order
    created: bool


def phone_digits(phone: str) -> str:
    digits = re.sub(r"\D", "", phone or "")
    # Russian numbers are written 8XXXXXXXXXX as often as +7XXXXXXXXXX: compare them as one.
    if len(digits) == 11 and digits.startswith("8"):
        digits = "7" + digits[1:]
    return digits


def request_hash(payload: Mapping) -> str:
    """A fingerprint of the request as parsed (every field present, defaults filled in, keys
    sorted), not of its bytes: the same order re-sent with other whitespace, key order or an
    omitted default is the same request."""
    return hashlib.sha256(json.dumps(payload, sort_keys=True, default=str).encode()).hexdigest()


def _validate(customer: CustomerData, items: Sequence[LineRequest]) -> list[tuple[str, Decimal]]:
    if not (customer.name or "").strip():
        raise OrderInvalid("customer.name is required", field="customer.name")
    if not (customer.email or "").strip() and not phone_digits(customer.phone):
        raise OrderInvalid("customer.email or customer.phone is required", field="customer.email")
    if customer.email and not _EMAIL.match(customer.email.strip()):
        raise OrderInvalid(f"customer.email {customer.email!r} is not an e-mail address", field="customer.email")
    if len(phone_digits(customer.phone)) > MAX_PHONE_DIGITS:
        raise OrderInvalid(f"customer.phone has more than {MAX_PHONE_DIGITS} digits", field="customer.phone")
    if not items:
        raise OrderInvalid("items must not be empty", field="items")
    if len(items) > MAX_LINES:
        raise OrderInvalid(f"at most {MAX_LINES} items per order", field="items")
    seen: dict[str, int] = {}
    out = []
    for i, item in enumerate(items):
        sku = (item.sku or "").strip()
        if not sku:
            raise OrderInvalid(f"line {i}: sku is required", line=i, field="sku")
        try:
            qty = Decimal(str(item.quantity))
        except (InvalidOperation, ValueError):
            raise OrderInvalid(f"line {i} ({sku}): quantity must be a number", line=i, field="quantity") from None
        if not qty.is_finite() or qty <= 0:
            raise OrderInvalid(f"line {i} ({sku}): quantity must be positive, got {item.quantity}",
                               line=i, field="quantity")
        if qty > MAX_QUANTITY:
            raise OrderInvalid(f"line {i} ({sku}): quantity {qty} is too large", line=i, field="quantity")
        if sku in seen:
            raise OrderInvalid(f"line {i}: sku {sku} already ordered on line {seen[sku]}", line=i, field="sku")
        seen[sku] = i
        out.append((sku, qty))
    return out


# ------------------------------------------------------------------------------------------------
# Create
# ------------------------------------------------------------------------------------------------
def customer_get_or_create(*, name: str, email: str = "", phone: str = "") -> Customer:
    """The customer an order belongs to: a returning customer matched by e-mail (case-insensitive),
    then by phone digits; else a new one.

    A match must not contradict the order's other contact: a known e-mail with a different phone,
    or a known phone with a different e-mail, is someone else (anyone can type a stranger's phone
    number). A matched customer is never rewritten: each order keeps its own contacts (the
    snapshot on `Order`), so a later order can change neither another order's details nor where
    its e-mails go."""
    email = (email or "").strip().lower()
    digits = phone_digits(phone)
    customer = None
    if email:
        customer = next((c for c in Customer.objects.filter(email=email).order_by("id")
                         if not (digits and c.phone_digits and c.phone_digits != digits)), None)
    if customer is None and digits:
        customer = next((c for c in Customer.objects.filter(phone_digits=digits).order_by("id")
                         if not (email and c.email and c.email != email)), None)
    if customer is None:
        customer = Customer.objects.create(name=name.strip()[:255], email=email, phone=(phone or "").strip()[:64],
                                           phone_digits=digits)
    return customer


def order_create(*, customer: CustomerData, items: Sequence[LineRequest], source: str = OrderSource.SITE,
                 source_order_id: str | None = None, idempotency_key: str | None = None,
                 shipping_method: str = "", shipping_address: str = "", comment: str = "",
                 enforce_stock: bool = True, request_fingerprint: str = "", by: str | None = None) -> OrderCreated:
    """Create an order, reserving its stock, or return the order already stored under the same
    idempotency key (or the same source order id, for marketplace imports).

    `enforce_stock=False` is for orders a marketplace has already sold: they reserve what there is
    and never fail for stock. Raises `OrderInvalid` (which line, which field) or `InsufficientStock`.
    """
    wanted = _validate(customer, items)
    key = (idempotency_key or "").strip() or None
    existing = _existing(key, source, source_order_id)
    if existing:
        return OrderCreated(_replayed(existing, request_fingerprint), False)

    skus = [sku for sku, _ in wanted]
    offers = {o.sku: o for o in Offer.objects.filter(sku__in=skus).select_related("product")}
    for i, (sku, _qty) in enumerate(wanted):
        offer = offers.get(sku)
        if offer is None or offer.archived or offer.product.archived:
            raise OrderInvalid(f"line {i}: unknown sku {sku}", line=i, field="sku")
        if offer.price is None and items[i].price is None:
            raise OrderInvalid(f"line {i}: sku {sku} has no price and cannot be sold", line=i, field="sku")

    try:
        with transaction.atomic():
            order, created = _create_locked(customer=customer, wanted=wanted, items=items, offers=offers, source=source,
                                   source_order_id=source_order_id, key=key, shipping_method=shipping_method,
                                   shipping_address=shipping_address, comment=comment, enforce_stock=enforce_stock,
                                   fingerprint=request_fingerprint, by=by or source)
    except IntegrityError:
        # Another request with the same key (or source order id) committed first: answer its order.
        existing = _existing(key, source, source_order_id)
        if existing is None:
            raise
        return OrderCreated(_replayed(existing, request_fingerprint), False)
    if not created:
        _replayed(order, request_fingerprint)
    return OrderCreated(order, created)


def _replayed(order: Order, fingerprint: str) -> Order:
    """The stored order, when this request is a replay of the one that made it; a different
    request under the same key raises `IdempotencyMismatch` (never hand one shopper's order to
    another). Orders stored without a fingerprint (imports) are not compared."""
    if fingerprint and order.request_hash and order.request_hash != fingerprint:
        raise IdempotencyMismatch("this Idempotency-Key was already used for a different order")
    return order


def _existing(key: str | None, source: str, source_order_id: str | None) -> Order | None:
    if key:
        found = Order.objects.filter(idempotency_key=key).first()
        if found:
            return found
    if source_order_id:
        return Order.objects.filter(source=source, source_order_id=source_order_id).first()
    return None


def _create_locked(*, customer, wanted, items, offers, source, source_order_id, key, shipping_method,
                   shipping_address, comment, enforce_stock, fingerprint, by):
    offer_ids = sorted({offers[sku].pk for sku, _ in wanted})
    # Lock in id order: two orders over the same offers queue up instead of deadlocking.
    levels = list(StockLevel.objects.select_for_update(of=("self",))
                  .filter(offer_id__in=offer_ids, warehouse__archived=False).order_by("id"))
    # Under the lock, a racing request with our key may have committed: answer its order.
    existing = _existing(key, source, source_order_id)
    if existing:
        return existing, False
    by_offer: dict[int, list[StockLevel]] = {}
    for level in levels:
        by_offer.setdefault(level.offer_id, []).append(level)

    now = timezone.now()
    allocations: list[tuple[int, StockLevel, Decimal]] = []  # (line index, level, qty)
    for i, (sku, qty) in enumerate(wanted):
        rows = sorted(by_offer.get(offers[sku].pk, []), key=lambda lv: (-lv.available, lv.id))
        available = sum((max(lv.available, Decimal(0)) for lv in rows), Decimal(0))
        if available < qty and enforce_stock:
            raise InsufficientStock(sku=sku, available=available, requested=qty, line=i)
        left = qty
        for level in rows:
            if left <= 0:
                break
            take = min(left, max(level.available, Decimal(0)))
            if take > 0:
                level.available -= take
                level.updated_at = now
                allocations.append((i, level, take))
                left -= take

    touched = {id(lv): lv for _, lv, _ in allocations}
    if touched:
        StockLevel.objects.bulk_update(list(touched.values()), ["available", "updated_at"])

    cust = customer_get_or_create(name=customer.name, email=customer.email, phone=customer.phone)
    order = Order(source=source, customer=cust, customer_name=customer.name.strip()[:255],
                  customer_email=(customer.email or "").strip()[:254], customer_phone=(customer.phone or "").strip()[:64],
                  idempotency_key=key, shipping_method=(shipping_method or "")[:64],
                  shipping_address=shipping_address or "", comment=comment or "", request_hash=fingerprint,
                  status=OrderStatus.PENDING, status_changed_at=now)
    order.source_order_id = (source_order_id or str(order.uid))[:128]
    order.save()
    order.number = f"{NUMBER_PREFIX.get(source, 'X')}-{order.pk:06d}"
    lines = []
    for i, (sku, qty) in enumerate(wanted):
        offer = offers[sku]
        price = items[i].price if items[i].price is not None else offer.price
        lines.append(OrderLine(order=order, position=i, offer=offer, sku=sku, name=offer.name[:512],
                               quantity=qty, price=Decimal(price).quantize(Decimal("0.01"))))
    OrderLine.objects.bulk_create(lines)
    if any(line.pk is None for line in lines):  # a backend that cannot return ids from bulk inserts
        lines = list(order.lines.order_by("position"))
    Reservation.objects.bulk_create([Reservation(order_line=lines[i], offer_id=level.offer_id,
                                                 warehouse_id=level.warehouse_id, quantity=qty)
                                     for i, level, qty in allocations])
    order.total = sum((line.total for line in lines), Decimal("0.00"))
    order.save(update_fields=["number", "total"])
    OrderStatusChange.objects.create(order=order, from_status="", to_status=OrderStatus.PENDING, at=now, by=by)
    transaction.on_commit(partial(_kick_export, order.pk), robust=True)
    log.info("orders.created order=%s source=%s lines=%s total=%s", order.number, source, len(lines), order.total)
    return order, True


def _kick_export(order_id: int) -> None:
    from integrations.jobs import order_created  # the one greppable call from domain into integrations

    order_created(order_id)


# ------------------------------------------------------------------------------------------------
# Status and shipments
# ------------------------------------------------------------------------------------------------
def order_status_set(*, order: Order | int, status: str, by: str, at=None, note: str = "",
                     notify: bool = True) -> OrderStatusChange | None:
    """Move an order to `status`. Returns the history row, or None when nothing changed (a replay
    or a duplicate event: no row, no e-mail). Cancelling an order MoySklad never got gives its
    reserved units back."""
    if status not in OrderStatus.values:
        raise ValueError(f"unknown order status {status!r}")
    order_id = order.pk if isinstance(order, Order) else order
    with transaction.atomic():
        locked = Order.objects.select_for_update().get(pk=order_id)
        if locked.status == status:
            return None
        when = at or timezone.now()
        change = OrderStatusChange.objects.create(
            order=locked, from_status=locked.status, to_status=status, at=when, by=by[:64], note=note[:255],
            notify=bool(notify and locked.customer_email))
        locked.status, locked.status_changed_at = status, timezone.now()
        locked.save(update_fields=["status", "status_changed_at", "updated_at"])
        if status == OrderStatus.CANCELLED and locked.export_state != ExportState.EXPORTED:
            reservations_release(order=locked, reason="cancelled", restore_stock=True)
        if change.notify:
            transaction.on_commit(partial(_queue_status_email, change.pk), robust=True)
    if isinstance(order, Order):
        order.status, order.status_changed_at = locked.status, locked.status_changed_at
    log.info("orders.status order=%s %s->%s by=%s", locked.number, change.from_status, status, by)
    return change


def status_from_upstream(*, current: str, state_status: str | None,
                         lines: Iterable[tuple[Decimal, Decimal]]) -> str:
    """The status an upstream document means: the manager's state, moved forward by what has
    actually shipped (a partial shipment under the state "Собран" is `partially_shipped`).
    `lines` is (ordered, shipped) per line. An unmapped state (None) keeps the current status.
    Cancelled, returned and completed are final words and are never moved by shipments."""
    target = state_status or current
    lines = list(lines)
    shipment = None
    if lines and all(shipped >= ordered for ordered, shipped in lines):
        shipment = OrderStatus.SHIPPED
    elif any(shipped > 0 for _ordered, shipped in lines):
        shipment = OrderStatus.PARTIALLY_SHIPPED
    if shipment and target in PROGRESS and target != OrderStatus.COMPLETED \
            and PROGRESS.index(shipment) > PROGRESS.index(target):
        target = shipment
    return target


def order_upstream_apply(*, order_id: int, state_status: str | None, shipped_by_line: Mapping[int, Decimal] | None,
                         by: str, at=None) -> OrderStatusChange | None:
    """Apply what the warehouse system says about an order: shipped quantities per line (when
    known) and the status those and the manager's state mean. Idempotent."""
    with transaction.atomic():
        order = Order.objects.select_for_update().get(pk=order_id)
        lines = list(order.lines.all())
        if shipped_by_line is not None:
            changed = []
            for line in lines:
                shipped = Decimal(shipped_by_line.get(line.pk, Decimal(0)))
                if line.shipped_quantity != shipped:
                    line.shipped_quantity = shipped
                    changed.append(line)
            if changed:
                OrderLine.objects.bulk_update(changed, ["shipped_quantity"])
        target = status_from_upstream(current=order.status, state_status=state_status,
                                      lines=[(line.quantity, line.shipped_quantity) for line in lines]
                                      if shipped_by_line is not None else [])
        return order_status_set(order=order.pk, status=target, by=by, at=at)


# ------------------------------------------------------------------------------------------------
# Reservations
# ------------------------------------------------------------------------------------------------
def reservations_release(*, order: Order, reason: str, restore_stock: bool) -> int:
    """End an order's site reservations. `restore_stock` gives the units back to `available`
    (cancelled before MoySklad ever held them); after an export MoySklad's reserve counts them,
    so `available` is left for the next stock sync to rewrite."""
    now = timezone.now()
    with transaction.atomic():
        active = list(Reservation.objects.select_for_update().filter(order_line__order=order, released_at__isnull=True)
                      .order_by("id"))
        if not active:
            return 0
        if restore_stock:
            back: dict[tuple[int, int], Decimal] = {}
            for r in active:
                back[(r.offer_id, r.warehouse_id)] = back.get((r.offer_id, r.warehouse_id), Decimal(0)) + r.quantity
            levels = list(StockLevel.objects.select_for_update().filter(
                offer_id__in={k[0] for k in back}, warehouse_id__in={k[1] for k in back}).order_by("id"))
            for level in levels:
                qty = back.get((level.offer_id, level.warehouse_id))
                if qty:
                    level.available += qty
                    level.updated_at = now
            StockLevel.objects.bulk_update(levels, ["available", "updated_at"])
        Reservation.objects.filter(pk__in=[r.pk for r in active]).update(released_at=now, release_reason=reason)
    return len(active)


def reservations_reapply(*, offer_ids: Iterable[int] | None = None) -> int:
    """Make sure every still-pending site reservation is subtracted from `available`.

    A stock sync writes MoySklad's absolute figures (available = stock − reserve) for rows that
    changed upstream; an order not yet exported is not in MoySklad's reserve, so its deduction
    would be lost. This lowers such rows back to stock − reserve − pending. It only ever lowers
    (a row that still carries the deduction is left alone), so it is safe to run at any time."""
    pending = Reservation.objects.filter(released_at__isnull=True)
    if offer_ids is not None:
        pending = pending.filter(offer_id__in=list(offer_ids))
    totals: dict[tuple[int, int], Decimal] = {}
    for offer_id, warehouse_id, qty in pending.values_list("offer_id", "warehouse_id", "quantity"):
        totals[(offer_id, warehouse_id)] = totals.get((offer_id, warehouse_id), Decimal(0)) + qty
    if not totals:
        return 0
    now = timezone.now()
    fixed = 0
    with transaction.atomic():
        levels = StockLevel.objects.select_for_update().filter(
            offer_id__in={k[0] for k in totals}, warehouse_id__in={k[1] for k in totals}).order_by("id")
        changed = []
        for level in levels:
            held = totals.get((level.offer_id, level.warehouse_id))
            if held is None:
                continue
            ceiling = max(level.stock - level.reserve - held, Decimal(0))
            if level.available > ceiling:
                level.available, level.updated_at = ceiling, now
                changed.append(level)
        if changed:
            StockLevel.objects.bulk_update(changed, ["available", "updated_at"])
            fixed = len(changed)
    return fixed


# ------------------------------------------------------------------------------------------------
# Export bookkeeping (called by the exporter in integrations; the domain keeps its own state)
# ------------------------------------------------------------------------------------------------
def _export_lease(owner: str | None) -> Lease:
    return Lease(Order, owner_field="export_lease_owner", until_field="export_lease_until", owner=owner)


def order_export_claim(*, order_id: int, owner: str | None = None) -> Lease | None:
    """Take the per-order export lease (syncsite.leases: short, and renewed by the exporter's
    heartbeat while it works), so two exporters never work on one order and a dead exporter's
    order is free again within a lease. The lease, or None when someone else holds the order or
    it is not pending."""
    lease = _export_lease(owner)
    return lease if lease.take_one(order_id, Q(export_state=ExportState.PENDING)) else None


def order_export_release(*, order_id: int, owner: str) -> None:
    _export_lease(owner).release([order_id])


def order_exported_mark(*, order: Order) -> None:
    """MoySklad holds the order (and its reserve): the site's reservations end here."""
    with transaction.atomic():
        Order.objects.filter(pk=order.pk).update(export_state=ExportState.EXPORTED, exported_at=timezone.now(),
                                                 export_error="")
        reservations_release(order=order, reason="exported", restore_stock=False)


def order_export_failed_mark(*, order_id: int, error: str, final: bool) -> None:
    updates = {"export_attempts": F("export_attempts") + 1, "export_error": error[:4000]}
    if final:
        updates["export_state"] = ExportState.FAILED
    Order.objects.filter(pk=order_id).update(**updates)


def order_export_requeue(*, order_ids: Iterable[int]) -> int:
    """A manager fixed the cause: put failed orders back in the outbox (the next run exports them)."""
    return Order.objects.filter(pk__in=list(order_ids), export_state=ExportState.FAILED).update(
        export_state=ExportState.PENDING, export_attempts=0, export_error="")


# ------------------------------------------------------------------------------------------------
# E-mail
# ------------------------------------------------------------------------------------------------
def _queue_status_email(change_id: int) -> None:
    from syncsite import publish as publisher

    from .tasks import order_status_email_task

    publisher.publish(order_status_email_task, change_id)


def status_emails_requeue(*, older_than_seconds: int = 60, max_age_hours: int = 48) -> int:
    """Re-signal e-mails that are owed but were never sent (their signal was lost)."""
    now = timezone.now()
    ids = list(OrderStatusChange.objects.filter(
        notify=True, notified_at__isnull=True, recorded_at__lt=now - timedelta(seconds=older_than_seconds),
        recorded_at__gt=now - timedelta(hours=max_age_hours)).values_list("pk", flat=True)[:500])
    for change_id in ids:
        _queue_status_email(change_id)
    return len(ids)
