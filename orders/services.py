"""Order writes: create (with stock reservation), status changes, shipments, cancellation.

Where reservations live and why is explained in `orders/models.py`. The rules here:

* `order_create` is the only place that takes stock for an order, through `stock.services`: it
  chooses the one warehouse that holds the whole order (`stock_allocate` locks the levels in id
  order — PostgreSQL row locks; on SQLite the IMMEDIATE transaction mode already serializes
  writers — so two orders for the last unit cannot both pass the check: the second waits, then
  sees the lowered figure and gets `InsufficientStock`) and holds the units there.
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
from stock import selectors as stock_selectors
from stock import services as stock_services
from syncsite.leases import Lease

from .models import (
    Customer,
    ExportState,
    Order,
    OrderLine,
    OrderSource,
    OrderStatus,
    OrderStatusChange,
    line_hold_ref,
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
    """No single warehouse holds the whole order. `available` and `requested` are those of the
    first short line in the warehouse that holds the most of it."""

    def __init__(self, *, sku: str, available: Decimal, requested: Decimal, line: int, split: bool = False):
        if split:
            detail = (f"line {line}: no single warehouse holds the whole order (at most {_num(available)} of "
                      f"{sku} in the warehouse that holds the most of it, {_num(requested)} requested)")
        else:
            detail = f"line {line}: only {_num(available)} of {sku} available, {_num(requested)} requested"
        super().__init__(detail)
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
    name: str = ""                # the channel's name for the line (kept on a flagged line)
    external_sku: str = ""        # the channel's own key for the line


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


def _validate(customer: CustomerData, items: Sequence[LineRequest], *,
              require_contact: bool = True) -> list[tuple[str, Decimal]]:
    if not (customer.name or "").strip():
        raise OrderInvalid("customer.name is required", field="customer.name")
    if require_contact and not (customer.email or "").strip() and not phone_digits(customer.phone):
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
    if customer is None and not email and not digits:
        # A buyer the channel does not name (marketplace FBS orders): one customer per name, so
        # MoySklad gets one counterparty ("Покупатель Ozon"), not one per order.
        customer = Customer.objects.filter(name=name.strip()[:255], email="", phone_digits="").order_by("id").first()
    if customer is None:
        customer = Customer.objects.create(name=name.strip()[:255], email=email, phone=(phone or "").strip()[:64],
                                           phone_digits=digits)
    return customer


def order_create(*, customer: CustomerData, items: Sequence[LineRequest], source: str = OrderSource.SITE,
                 source_order_id: str | None = None, idempotency_key: str | None = None,
                 shipping_method: str = "", shipping_address: str = "", comment: str = "",
                 enforce_stock: bool = True, request_fingerprint: str = "", by: str | None = None,
                 warehouse_ids: Sequence[int] | None = None, preferred_warehouse_ids: Sequence[int] = (),
                 require_contact: bool = True, flag_unknown: bool = False, placed_at=None,
                 source_status: str = "", source_updated_at=None) -> OrderCreated:
    """Create an order, holding its stock in one warehouse, or return the order already stored
    under the same idempotency key (or the same source order id, for marketplace imports).

    The warehouse is chosen among `warehouse_ids` (default: the MoySklad stores, the shipping
    store preferred; a channel passes its own warehouses and preference). `enforce_stock=False`
    is for orders a marketplace has already sold: they are held in the warehouse that has the
    most of them and never fail for stock. Raises `OrderInvalid` (which line, which field) or
    `InsufficientStock`.

    Marketplace imports: `require_contact=False` (the channel does not share the buyer's
    contacts), `flag_unknown=True` keeps a line whose SKU we do not know as a flagged line (no
    offer, no hold; the order is flagged for a manager) instead of refusing the order, and
    `placed_at` / `source_status` / `source_updated_at` record what the channel says.
    """
    wanted = _validate(customer, items, require_contact=require_contact)
    key = (idempotency_key or "").strip() or None
    existing = _existing(key, source, source_order_id)
    if existing:
        return OrderCreated(_replayed(existing, request_fingerprint), False)

    skus = [sku for sku, _ in wanted]
    offers = {o.sku: o for o in Offer.objects.filter(sku__in=skus).select_related("product")}
    unknown: list[tuple[LineRequest, str, Decimal]] = []
    if flag_unknown:
        keep = [i for i, (sku, _qty) in enumerate(wanted)
                if offers.get(sku) is not None and not offers[sku].archived and not offers[sku].product.archived]
        unknown = [(items[i], sku, qty) for i, (sku, qty) in enumerate(wanted) if i not in keep]
        wanted, items = [wanted[i] for i in keep], [items[i] for i in keep]
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
                                   fingerprint=request_fingerprint, by=by or source, warehouse_ids=warehouse_ids,
                                   preferred=preferred_warehouse_ids, unknown=unknown,
                                   channel={"placed_at": placed_at, "source_status": (source_status or "")[:64],
                                            "source_updated_at": source_updated_at})
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
                   shipping_address, comment, enforce_stock, fingerprint, by, warehouse_ids, preferred,
                   unknown=(), channel=None):
    # One order, one warehouse: the shipping store when it holds every line, else the store with
    # the most that does (its levels stay locked until commit). MoySklad's reserve then lands
    # where our hold is, since the export names that store.
    if warehouse_ids is None:
        candidates, preferred = stock_selectors.warehouse_list_for_orders()
    else:
        candidates = list(warehouse_ids)
    try:
        warehouse_id = stock_services.stock_allocate(lines=[(offers[sku].pk, qty) for sku, qty in wanted],
                                                     warehouse_ids=candidates, preferred=preferred,
                                                     enforce=enforce_stock) if wanted else None
    except stock_services.StockShortError as exc:
        sku, _qty = wanted[exc.line]
        # Under the lock, a racing request with our key may have committed: answer its order.
        existing = _existing(key, source, source_order_id)
        if existing:
            return existing, False
        raise InsufficientStock(sku=sku, available=exc.available, requested=exc.requested, line=exc.line,
                                split=exc.single_store) from None
    existing = _existing(key, source, source_order_id)
    if existing:
        return existing, False

    now = timezone.now()
    cust = customer_get_or_create(name=customer.name, email=customer.email, phone=customer.phone)
    order = Order(source=source, customer=cust, customer_name=customer.name.strip()[:255],
                  customer_email=(customer.email or "").strip()[:254], customer_phone=(customer.phone or "").strip()[:64],
                  idempotency_key=key, shipping_method=(shipping_method or "")[:64],
                  shipping_address=shipping_address or "", comment=comment or "", request_hash=fingerprint,
                  status=OrderStatus.PENDING, status_changed_at=now, flagged=bool(unknown),
                  **{k: v for k, v in (channel or {}).items() if v is not None})
    order.source_order_id = (source_order_id or str(order.uid))[:128]
    order.save()
    order.number = f"{NUMBER_PREFIX.get(source, 'X')}-{order.pk:06d}"
    lines = []
    for i, (sku, qty) in enumerate(wanted):
        offer = offers[sku]
        price = items[i].price if items[i].price is not None else offer.price
        lines.append(OrderLine(order=order, position=i, offer=offer, sku=sku, name=offer.name[:512],
                               quantity=qty, price=Decimal(price).quantize(Decimal("0.01")),
                               external_sku=(items[i].external_sku or "")[:255]))
    for j, (item, sku, qty) in enumerate(unknown, start=len(lines)):
        lines.append(OrderLine(order=order, position=j, offer=None, sku=sku[:255], name=(item.name or sku)[:512],
                               quantity=qty, price=Decimal(item.price or 0).quantize(Decimal("0.01")),
                               external_sku=(item.external_sku or "")[:255], flagged=True))
    OrderLine.objects.bulk_create(lines)
    if any(line.pk is None for line in lines):  # a backend that cannot return ids from bulk inserts
        lines = list(order.lines.order_by("position"))
    if warehouse_id is not None:
        # A marketplace order already sold (enforce_stock=False) holds its full quantity even
        # beyond what is there: the units are owed, and a restock serves them first.
        stock_services.stock_holds_place(
            holds=[stock_services.HoldRequest(offer_id=line.offer_id, warehouse_id=warehouse_id,
                                              quantity=line.quantity, ref=line.hold_ref)
                   for line in lines if line.offer_id is not None],
            source=source, via="order")
    order.total = sum((line.total for line in lines), Decimal("0.00"))
    order.save(update_fields=["number", "total"])
    _export_open(order)
    OrderStatusChange.objects.create(order=order, from_status="", to_status=OrderStatus.PENDING, at=now, by=by)
    transaction.on_commit(partial(_kick_export, order.pk), robust=True)
    log.info("orders.created order=%s source=%s lines=%s flagged=%s total=%s", order.number, source, len(lines),
             len(unknown), order.total)
    return order, True


def _export_open(order: Order) -> None:
    """Put the new order in the MoySklad export outbox: its binding row (our stable code, no
    external id yet, state pending), in the transaction that creates the order, so an order
    never exists without its place in the outbox and the exporter's externalCode search always
    has a code to look for."""
    from integrations.models import OrderBinding, System  # the outbox row is the order's binding

    OrderBinding.objects.create(system=System.MOYSKLAD, order=order, external_id="", external_code=order.export_code)


def _kick_status_changed(order_id: int) -> None:
    from integrations.jobs import order_status_changed  # the greppable call, as for the export

    order_status_changed(order_id)


def _kick_export(order_id: int) -> None:
    from integrations.jobs import order_created  # the one greppable call from domain into integrations

    order_created(order_id)


# ------------------------------------------------------------------------------------------------
# Status and shipments
# ------------------------------------------------------------------------------------------------
def order_status_set(*, order: Order | int, status: str, by: str, at=None, note: str = "",
                     notify: bool = True) -> OrderStatusChange | None:
    """Move an order to `status`. Returns the history row, or None when nothing changed (a replay
    or a duplicate event: no row, no e-mail). Cancelling (or shipping) ends the order's stock
    holds that no upstream reserve took over: the units count as available again at once."""
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
        if status in HOLDS_END:
            _holds_release(locked, reason=HOLDS_END[status])
        if change.notify:
            transaction.on_commit(partial(_queue_status_email, change.pk), robust=True)
        if locked.source != OrderSource.SITE:
            # A marketplace order: its channel may have to hear of this change (the outbox decides).
            transaction.on_commit(partial(_kick_status_changed, locked.pk), robust=True)
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
# Stock holds (kept by stock.services; the order only says when they end)
# ------------------------------------------------------------------------------------------------
#: statuses that end an order's holds that were never handed over, and why
HOLDS_END = {OrderStatus.CANCELLED: "cancelled", OrderStatus.SHIPPED: "shipped",
             OrderStatus.COMPLETED: "shipped", OrderStatus.RETURNED: "shipped"}


def order_hold_refs(*, order: Order | int) -> list[str]:
    """The refs this order's stock holds carry (one per line)."""
    order_id = order.pk if isinstance(order, Order) else order
    return [line_hold_ref(pk) for pk in OrderLine.objects.filter(order_id=order_id).values_list("pk", flat=True)]


def _holds_release(order: Order, *, reason: str) -> None:
    stock_services.stock_holds_release(refs=order_hold_refs(order=order), reason=reason, source=order.source,
                                       via="cancel" if reason == "cancelled" else "ship")


# ------------------------------------------------------------------------------------------------
# Export bookkeeping (called by the exporter in integrations). The state is kept on the order's
# MoySklad binding (integrations.OrderBinding): one row says everything about the order upstream.
# ------------------------------------------------------------------------------------------------
def _export_binding(order_id: int):
    """The order's MoySklad binding rows (at most one): the outbox row of its export."""
    from integrations.models import OrderBinding, System

    return OrderBinding.objects.filter(system=System.MOYSKLAD, order_id=order_id)


def _export_lease(owner: str | None) -> Lease:
    from integrations.models import OrderBinding

    return Lease(OrderBinding, owner_field="export_lease_owner", until_field="export_lease_until", owner=owner)


def order_export_claim(*, order_id: int, owner: str | None = None) -> Lease | None:
    """Take the per-order export lease (syncsite.leases, on the order's MoySklad binding: short,
    and renewed by the exporter's heartbeat while it works), so two exporters never work on one
    order and a dead exporter's order is free again within a lease. The lease, or None when
    someone else holds the order or it is not pending."""
    binding_id = _export_binding(order_id).values_list("pk", flat=True).first()
    if binding_id is None:
        return None  # not an order to export (every order gets its binding when it is created)
    lease = _export_lease(owner)
    return lease if lease.take_one(binding_id, Q(export_state=ExportState.PENDING)) else None


def order_export_release(*, order_id: int, owner: str) -> None:
    _export_lease(owner).release(list(_export_binding(order_id).values_list("pk", flat=True)))


def order_exported_mark(*, order: Order, reserved_by: str = "moysklad", counted_from=None) -> None:
    """The warehouse system holds the order with its own reserve: the order's holds on its
    warehouses are handed over to it. They stay subtracted until a stock read of `reserved_by`
    that started after now counts them (surely after `counted_from`; see StockHold)."""
    with transaction.atomic():
        _export_binding(order.pk).update(export_state=ExportState.EXPORTED, exported_at=timezone.now(),
                                         export_error="")
        stock_services.stock_holds_hand_over(refs=order_hold_refs(order=order), to=reserved_by,
                                             counted_from=counted_from)


def order_export_failed_mark(*, order_id: int, error: str, final: bool) -> None:
    updates = {"export_attempts": F("export_attempts") + 1, "export_error": error[:4000]}
    if final:
        updates["export_state"] = ExportState.FAILED
    _export_binding(order_id).update(**updates)


def order_export_requeue(*, order_ids: Iterable[int]) -> int:
    """A manager fixed the cause: put failed orders back in the outbox (the next run exports them)."""
    from integrations.models import OrderBinding, System

    return OrderBinding.objects.filter(system=System.MOYSKLAD, order_id__in=list(order_ids),
                                       export_state=ExportState.FAILED).update(
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
