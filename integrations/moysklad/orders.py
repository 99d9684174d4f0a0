"""Orders between the site and MoySklad.

Export (site -> `customerorder`), exactly once on MoySklad's side
-----------------------------------------------------------------
The order bindings are the outbox: `order_create` makes each order's `OrderBinding` (our stable
code, the order's UUID, as `external_code`; no external id; state pending) in the transaction that
creates the order. `orders-export` (every minute) and the per-order task queued after commit both
call `OrderExportSession.export`. For one order:

1. Take the export lease on its binding (syncsite.leases: short, renewed while the export runs), so
   two exporters never work on one order and a dead exporter's order is taken up within a minute.
2. Read the binding: bound already means MoySklad holds the order (mark it exported).
3. If an earlier attempt may have reached MoySklad (`create_attempted_at` is set: a dropped
   connection, a killed worker), look the order up by `externalCode` first and bind it if found.
4. Otherwise mark the attempt, then create with `syncId` = the order's UUID. MoySklad answers a
   repeated create with the same syncId with the order it already made, so the base client may
   retry this POST; together with step 3, a retry never makes a second order.
5. Bind (`external_id`, `external_updated_at`), mark the binding exported and hand its stock holds
   over to MoySklad: the positions carry `reserve` and the order names the store the holds are
   in, so MoySklad's reserve lands where our hold is. The holds stay subtracted until a stock
   read that started after the hand-over (plus MoySklad's recalculation delay) releases them.

Requests per order: a returning customer's counterparty comes from `CustomerBinding`, the
organization and store from settings or a cached lookup, so a first attempt costs one request
(the create) and a retry two (search, create).

Statuses and shipments back (`customerorder_import_record`)
-----------------------------------------------------------
The same record step serves webhooks (customerorder UPDATE, demand CREATE/UPDATE lead to the
order) and the `moysklad-order-statuses` poll: take the document, skip it when it is older than
what we already applied (`external_updated_at`), map its state through `OrderStateMapping` and its
positions' `shipped` quantities to our lines, and let `orders.services.order_upstream_apply`
decide the unified status. Applying the same document twice changes nothing and mails no one.
"""
from __future__ import annotations

import hashlib
import logging
import os
import socket
import threading
import time
import uuid
from dataclasses import dataclass
from datetime import timedelta
from decimal import Decimal

from django.core.cache import cache
from django.db import transaction
from django.utils import timezone

from integrations.http.errors import MappingError, MissingDependencyError, RejectedError, UpstreamError
from integrations.models import (
    CustomerBinding,
    OfferBinding,
    OrderBinding,
    OrderStateMapping,
    System,
    WarehouseBinding,
)
from integrations.runs import JobContext
from orders import selectors as order_selectors
from orders import services as order_services
from orders.models import Customer, ExportState, Order, OrderStatus
from stock import selectors as stock_selectors

from .client import MoySkladClient
from .constants import MSK
from .mapping import id_from_href, meta_id, parse_msk, rubles_to_kopecks

log = logging.getLogger("syncsite.moysklad.orders")
MS = System.MOYSKLAD

MAX_EXPORT_ATTEMPTS = 10          # then the order is `failed` and waits for a manager
DEFAULTS_TTL = 3600               # organization/store lookups are cached this long
FIRST_POLL_WINDOW = timedelta(days=7)
# MoySklad recalculates stock reports asynchronously after a document changes: a report read
# sooner than this after our order was created may not count its reserve yet.
RESERVE_RECALC = timedelta(seconds=5)
# `orders-export` waits at most this long for orders another worker is exporting, to report them.
IN_FLIGHT_WAIT = 5.0
IN_FLIGHT_POLL = 0.25

# The account's standard state names -> our statuses (interfaces.md). Compared without case and
# with ё read as е, so "Подтверждён" and "подтвержден" both match.
STANDARD_STATES = {
    "новый": OrderStatus.PENDING,
    "подтвержден": OrderStatus.CONFIRMED,
    "собран": OrderStatus.PROCESSING,
    "отгружен": OrderStatus.SHIPPED,
    "доставлен": OrderStatus.COMPLETED,
    "возврат": OrderStatus.RETURNED,
    "отменен": OrderStatus.CANCELLED,
}


def _norm(name: str) -> str:
    return " ".join((name or "").lower().replace("ё", "е").split())


def customer_code(customer: Customer) -> str:
    """Our customer key upstream (the counterparty's externalCode)."""
    return f"syncsite-customer-{customer.uid}"


# ------------------------------------------------------------------------------------------------
# State mapping
# ------------------------------------------------------------------------------------------------
def state_mapping_seed(*, client: MoySkladClient) -> int:
    """Add the account's order states we do not know yet, mapped by their standard names (unknown
    names map to "no change"). Rows a manager already has are kept as they are; only the display
    name follows a rename. Returns how many states were added."""
    states = client.customerorder_metadata().get("states") or []
    known = {m.state_id: m for m in OrderStateMapping.objects.filter(system=MS)}
    new, renamed = [], []
    for state in states:
        if not isinstance(state, dict):
            continue
        state_id = state.get("id") or meta_id(state)
        name = str(state.get("name") or "")[:255]
        if not state_id:
            continue
        if state_id in known:
            if name and known[state_id].name != name:
                known[state_id].name = name
                renamed.append(known[state_id])
            continue
        new.append(OrderStateMapping(system=MS, state_id=state_id, name=name,
                                     status=STANDARD_STATES.get(_norm(name), ""), seeded=True))
    if new:
        OrderStateMapping.objects.bulk_create(new, ignore_conflicts=True)
    if renamed:
        OrderStateMapping.objects.bulk_update(renamed, ["name", "updated_at"])
    return len(new)


class StateMapper:
    """State id -> unified status, read once per session; an unknown id re-reads the account's
    states once (a manager may have just added one)."""

    def __init__(self, client: MoySkladClient):
        self.client = client
        self._map: dict[str, str] | None = None
        self._reloaded = False

    def _load(self) -> None:
        self._map = dict(OrderStateMapping.objects.filter(system=MS).values_list("state_id", "status"))

    def status_for(self, state_id: str | None) -> str | None:
        if not state_id:
            return None
        if self._map is None:
            self._load()
        if state_id not in self._map and not self._reloaded:
            self._reloaded = True
            state_mapping_seed(client=self.client)
            self._load()
        return self._map.get(state_id) or None


# ------------------------------------------------------------------------------------------------
# Export
# ------------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class OrderDefaults:
    organization: dict
    store: dict


def _looks_like_id(value: str) -> bool:
    try:
        uuid.UUID(value)
        return True
    except ValueError:
        return False


def _pick(rows: list[dict], wanted: str, what: str, setting: str) -> dict:
    active = [r for r in rows if isinstance(r, dict) and not r.get("archived")]
    if wanted:
        for row in active:
            if wanted in (row.get("id"), row.get("name"), row.get("code"), row.get("externalCode")):
                return row
        raise MappingError(f"{setting}={wanted!r}: no such {what} in the MoySklad account")
    if not active:
        raise MappingError(f"the MoySklad account has no active {what}")
    return active[0]


def order_defaults(*, client: MoySkladClient) -> OrderDefaults:
    """Organization and store for new orders: MOYSKLAD_ORGANIZATION_ID / MOYSKLAD_STORE_ID (an id
    costs no request; a name is looked up), else the account's first ones. Cached an hour."""
    org_setting = (client.conf.get("ORGANIZATION_ID") or "").strip()
    store_setting = (client.conf.get("STORE_ID") or "").strip()
    key = "moysklad:order-defaults:" + hashlib.sha256(
        f"{client.base_url}|{org_setting}|{store_setting}".encode()).hexdigest()[:32]
    found = cache.get(key)
    if found:
        return OrderDefaults(**found)
    if org_setting and _looks_like_id(org_setting):
        org_id = org_setting
    else:
        org_id = _pick(client.organizations(), org_setting, "organization", "MOYSKLAD_ORGANIZATION_ID")["id"]
    if store_setting and _looks_like_id(store_setting):
        store_id = store_setting
    else:
        store_id = _pick(client.stores(), store_setting, "store", "MOYSKLAD_STORE_ID")["id"]
    found = {"organization": client.meta("organization", org_id), "store": client.meta("store", store_id)}
    cache.set(key, found, DEFAULTS_TTL)
    return OrderDefaults(**found)


def _owner() -> str:
    return f"{socket.gethostname()}:{os.getpid()}:{threading.get_ident()}:{uuid.uuid4().hex[:8]}"


class OrderExportSession:
    """Exports orders through one client, caching what every order needs (defaults,
    counterparties) for the session."""

    def __init__(self, client: MoySkladClient):
        self.client = client
        self._defaults: OrderDefaults | None = None
        self._agents: dict[int, dict] = {}

    # -- the record step --------------------------------------------------------------------------
    def export(self, order_id: int) -> str:
        """Export one order. Returns what happened: exported, found_existing, already_exported or
        skipped (someone else holds it or it is not pending). Data problems raise MappingError /
        MissingDependencyError / RejectedError after recording them on the order; transport errors
        propagate for the caller to retry."""
        owner = _owner()
        lease = order_services.order_export_claim(order_id=order_id, owner=owner)
        if lease is None:
            return "skipped"
        lease.start_heartbeat()  # a short lease, renewed while this export runs, however long it takes
        try:
            order = Order.objects.select_related("customer").get(pk=order_id)
            binding = OrderBinding.objects.get(pk__in=lease.keys)  # the claimed outbox row
            if binding.external_id:
                order_services.order_exported_mark(order=order, reserved_by=MS,
                                                   counted_from=timezone.now() + RESERVE_RECALC)
                return "already_exported"
            remote = None
            if binding.create_attempted_at is not None:
                # An earlier attempt may have reached MoySklad before its answer was lost.
                remote = self.client.customerorder_find_by_external_code(binding.external_code or order.export_code)
            outcome = "found_existing"
            if remote is None:
                body = self.payload(order)
                OrderBinding.objects.filter(pk=binding.pk).update(create_attempted_at=timezone.now())
                remote = self.client.customerorder_create(body)
                outcome = "exported"
            self._bind(order, binding, remote)
            log.info("moysklad.order.%s order=%s customerorder=%s", outcome, order.number, remote.get("id"))
            return outcome
        except (MappingError, MissingDependencyError, RejectedError) as exc:
            attempts = OrderBinding.objects.filter(pk__in=lease.keys).values_list(
                "export_attempts", flat=True).first() or 0
            final = not isinstance(exc, MissingDependencyError) or attempts + 1 >= MAX_EXPORT_ATTEMPTS
            order_services.order_export_failed_mark(order_id=order_id, error=str(exc), final=final)
            log.warning("moysklad.order.export-rejected order=%s final=%s %s", order_id, final, exc)
            raise
        except UpstreamError as exc:
            order_services.order_export_failed_mark(order_id=order_id, error=str(exc), final=False)
            raise
        finally:
            lease.stop_heartbeat()
            order_services.order_export_release(order_id=order_id, owner=owner)

    def _bind(self, order: Order, binding: OrderBinding, remote: dict) -> None:
        external_id = remote.get("id") or (id_from_href(remote["meta"]["href"]) if remote.get("meta") else "")
        if not external_id:
            raise MappingError("MoySklad answered a create without an id")
        with transaction.atomic():
            OrderBinding.objects.filter(pk=binding.pk).update(
                external_id=external_id, external_updated_at=parse_msk(remote.get("updated")),
                ui_url=str((remote.get("meta") or {}).get("uuidHref") or "")[:500], synced_at=timezone.now())
            order_services.order_exported_mark(order=order, reserved_by=MS,
                                               counted_from=timezone.now() + RESERVE_RECALC)

    # -- what we send ------------------------------------------------------------------------------
    def defaults(self) -> OrderDefaults:
        if self._defaults is None:
            self._defaults = order_defaults(client=self.client)
        return self._defaults

    def payload(self, order: Order) -> dict:
        every = list(order.lines.select_related("offer__product").order_by("position", "id"))
        # A flagged line (a marketplace SKU we do not know) has no product to send: the
        # description names it for the manager.
        lines = [line for line in every if line.offer_id is not None]
        bindings = {b["offer_id"]: b for b in OfferBinding.objects.filter(
            system=MS, offer_id__in=[line.offer_id for line in lines]).values("offer_id", "external_id", "kind")}
        positions = []
        vat_enabled = False
        for line in lines:
            bound = bindings.get(line.offer_id)
            if bound is None:
                raise MissingDependencyError(
                    f"{line.sku} is not linked to a MoySklad product yet (run moysklad-catalog)")
            vat = line.offer.product.vat
            vat_enabled = vat_enabled or bool(vat)
            kind = "variant" if bound["kind"] == "variant" else "product"
            quantity = float(line.quantity)
            positions.append({"assortment": self.client.meta(kind, bound["external_id"]), "quantity": quantity,
                              "price": rubles_to_kopecks(line.price), "discount": 0, "vat": int(vat or 0),
                              "reserve": quantity})
        defaults = self.defaults()
        description = [f"Заказ {order.number} ({order.get_source_display()})"]
        if order.source != "site":
            description.append(f"{order.get_source_display()}: заказ {order.source_order_id}")
        description += [f"Неизвестный SKU {line.sku} × {line.quantity:g}: не выгружен, нужен менеджер"
                        for line in every if line.offer_id is None]
        if order.shipping_method:
            description.append(f"Доставка: {order.shipping_method}")
        if order.comment:
            description.append(f"Комментарий покупателя: {order.comment}")
        body = {
            "externalCode": order.export_code,
            "syncId": str(order.uid),
            "organization": defaults.organization,
            "store": self.store(order, lines) or defaults.store,
            "agent": self.agent(order.customer),
            "moment": timezone.localtime(order.created_at, timezone=MSK).strftime("%Y-%m-%d %H:%M:%S"),
            "vatEnabled": vat_enabled,
            "vatIncluded": True,
            "description": "\n".join(description)[:4096],
            "positions": positions,
        }
        if order.shipping_address:
            body["shipmentAddress"] = order.shipping_address[:255]
        return body

    def store(self, order: Order, lines: list) -> dict | None:
        """The store the order's stock is held in (so MoySklad's reserve lands where our hold
        is); None when it holds nothing in a MoySklad store (the default store then)."""
        warehouse_id = stock_selectors.stock_hold_warehouse(refs=[line.hold_ref for line in lines])
        if warehouse_id is None:
            return None
        external_id = (WarehouseBinding.objects.filter(system=MS, warehouse_id=warehouse_id)
                       .values_list("external_id", flat=True).first())
        if not external_id:
            log.warning("moysklad.order.hold-outside-moysklad order=%s warehouse=%s", order.number, warehouse_id)
            return None
        return self.client.meta("store", external_id)

    def agent(self, customer: Customer) -> dict:
        """The customer's counterparty: bound before (no request), else found by our externalCode,
        e-mail, then phone digits (checked here: MoySklad's phone field is free text), else created
        once with our key as externalCode and syncId. As on the site, a counterparty whose other
        contact contradicts the customer's (same e-mail, another phone) is someone else's."""
        if customer.pk in self._agents:
            return self._agents[customer.pk]
        bound = (CustomerBinding.objects.filter(system=MS, customer=customer)
                 .values_list("external_id", flat=True).first())
        if bound:
            meta = self.client.meta("counterparty", bound)
            self._agents[customer.pk] = meta
            return meta
        code = customer_code(customer)
        row = self.client.counterparty_find_by_external_code(code)
        if row is None and customer.email:
            row = self.client.counterparty_find_by_email(customer.email)
            if row is not None and ((row.get("email") or "").strip().lower() != customer.email.lower()
                                    or _contradicts(row, customer)):
                row = None
        if row is None and len(customer.phone_digits) >= 7:
            for candidate in self.client.counterparty_search(customer.phone_digits[-10:]):
                if (order_services.phone_digits(candidate.get("phone") or "") == customer.phone_digits
                        and not _contradicts(candidate, customer)):
                    row = candidate
                    break
        if row is None:
            body = {"name": customer.name[:255] or customer.email or customer.phone, "companyType": "individual",
                    "externalCode": code, "syncId": str(customer.uid)}
            if customer.email:
                body["email"] = customer.email
            if customer.phone:
                body["phone"] = customer.phone
            row = self.client.counterparty_create(body)
        external_id = row.get("id")
        if not external_id:
            raise MappingError("counterparty without an id")
        CustomerBinding.objects.update_or_create(
            system=MS, customer=customer,
            defaults={"external_id": external_id, "external_code": (row.get("externalCode") or "")[:255],
                      "external_updated_at": parse_msk(row.get("updated")), "synced_at": timezone.now()})
        meta = self.client.meta("counterparty", external_id)
        self._agents[customer.pk] = meta
        return meta


def _contradicts(counterparty: dict, customer: Customer) -> bool:
    """The counterparty has an e-mail or a phone that differs from the customer's own."""
    email = (counterparty.get("email") or "").strip().lower()
    digits = order_services.phone_digits(counterparty.get("phone") or "")
    return bool((email and customer.email and email != customer.email.lower())
                or (digits and customer.phone_digits and digits != customer.phone_digits))


def orders_export(ctx: JobContext) -> None:
    """Job `orders-export`: every order MoySklad does not hold yet (the outbox), oldest first. An
    order committed while the broker was down is picked up here.

    An order another worker is exporting right now (its per-order claim is taken) is waited for,
    a few seconds at most, so the summary tells the truth: `exported_here`, `exported_elsewhere`
    (by another worker meanwhile) and `still_in_flight` (still claimed when the wait ended)."""
    ids = order_selectors.order_list_export_pending()
    ctx.set_total(len(ids))
    if not ids:
        return
    with MoySkladClient() as client:
        session = OrderExportSession(client)
        held: list[int] = []
        try:
            for order_id in ids:
                if _export_counted(session, order_id, ctx) == "skipped":
                    held.append(order_id)
                ctx.advance()
            _wait_for_others(session, held, ctx)
        finally:
            ctx.count("requests", client.stats.requests)


def _export_counted(session: OrderExportSession, order_id: int, ctx: JobContext) -> str:
    try:
        outcome = session.export(order_id)
    except (MappingError, MissingDependencyError, RejectedError) as exc:
        ctx.error(f"order {order_id}", str(exc))
        return "failed"
    if outcome != "skipped":
        ctx.count(outcome)
        ctx.count("exported_here")
    return outcome


def _wait_for_others(session: OrderExportSession, held: list[int], ctx: JobContext) -> None:
    """Orders we could not claim: another worker holds them, or finished them meanwhile. Wait
    (bounded) until each is exported elsewhere, failed there, or free for us to export."""
    deadline = time.monotonic() + IN_FLIGHT_WAIT
    waiting = list(held)
    while waiting:
        states = dict(OrderBinding.objects.filter(system=MS, order_id__in=waiting)
                      .values_list("order_id", "export_state"))
        still = []
        for order_id in waiting:
            state = states.get(order_id)
            if state == ExportState.EXPORTED:
                ctx.count("exported_elsewhere")
            elif state == ExportState.PENDING and _export_counted(session, order_id, ctx) == "skipped":
                still.append(order_id)
            elif state not in (ExportState.EXPORTED, ExportState.PENDING):
                ctx.count("failed_elsewhere")  # recorded on the order by the worker that tried
        waiting = still
        if not waiting or time.monotonic() >= deadline:
            break
        time.sleep(IN_FLIGHT_POLL)
    if waiting:
        ctx.count("still_in_flight", len(waiting))
        log.info("moysklad.orders.export-in-flight orders=%s", waiting[:20])


def order_export_one(*, order_id: int) -> str:
    """The after-commit export of one new order (the task calls this)."""
    with MoySkladClient() as client:
        try:
            return OrderExportSession(client).export(order_id)
        except (MappingError, MissingDependencyError, RejectedError):
            return "failed"  # recorded on the order; the outbox job or a manager takes it from here


# ------------------------------------------------------------------------------------------------
# Statuses and shipments back
# ------------------------------------------------------------------------------------------------
def _shipped_by_line(order: Order, positions: list[dict]) -> dict[int, Decimal]:
    """Shipped quantity per our line, from the document's positions (matched by the assortment's
    MoySklad id through OfferBinding). A position of another offer (added by a manager) is
    ignored; two positions of one offer add up."""
    by_assortment: dict[str, Decimal] = {}
    for pos in positions:
        if not isinstance(pos, dict):
            continue
        item = meta_id(pos.get("assortment"))
        if not item:
            continue
        try:
            shipped = Decimal(str(pos.get("shipped") or 0))
        except ArithmeticError:
            raise MappingError(f"bad shipped quantity {pos.get('shipped')!r}") from None
        by_assortment[item] = by_assortment.get(item, Decimal(0)) + shipped
    lines = list(order.lines.all())
    offers = dict(OfferBinding.objects.filter(system=MS, offer_id__in=[line.offer_id for line in lines])
                  .values_list("offer_id", "external_id"))
    out: dict[int, Decimal] = {}
    left = dict(by_assortment)
    for line in lines:  # several lines of one offer: fill them in order
        ext = offers.get(line.offer_id)
        have = left.get(ext, Decimal(0)) if ext else Decimal(0)
        take = min(have, line.quantity) if have > 0 else Decimal(0)
        out[line.pk] = take
        if ext:
            left[ext] = have - take
    return out


def customerorder_import_record(*, client: MoySkladClient, row: dict, mapper: StateMapper, by: str) -> str:
    """Apply one customerorder document (from a webhook fetch or the poll). Returns: not_ours,
    stale, unchanged or changed."""
    if not isinstance(row, dict) or not row.get("id"):
        raise MappingError("malformed customerorder")
    binding = OrderBinding.objects.filter(system=MS, external_id=row["id"]).first()
    if binding is None:
        return "not_ours"
    updated = parse_msk(row.get("updated"))
    if _older(updated, binding.external_updated_at):
        return "stale"
    state_status = mapper.status_for(meta_id(row.get("state")))
    positions = (row.get("positions") or {}).get("rows") if isinstance(row.get("positions"), dict) else None
    if positions is None:
        positions = client.customerorder_positions(row["id"])
    order = Order.objects.get(pk=binding.order_id)
    shipped = _shipped_by_line(order, positions)
    with transaction.atomic():
        locked = OrderBinding.objects.select_for_update().get(pk=binding.pk)
        if _older(updated, locked.external_updated_at):
            return "stale"  # a newer document was applied while we were fetching this one
        change = order_services.order_upstream_apply(order_id=order.pk, state_status=state_status,
                                                     shipped_by_line=shipped, by=by, at=updated)
        newest = max(filter(None, [updated, locked.external_updated_at]), default=None)
        OrderBinding.objects.filter(pk=locked.pk).update(external_updated_at=newest, synced_at=timezone.now())
    return "changed" if change else "unchanged"


def _older(updated, applied) -> bool:
    """Strictly older: an equal timestamp is applied again (idempotent), so a shipment recorded
    without a change of the order's `updated` is not lost."""
    return bool(updated and applied and updated < applied)


def order_statuses_import(ctx: JobContext) -> None:
    """Job `moysklad-order-statuses`: orders changed upstream since the last run (minus the
    overlap), for when a webhook was lost. Only orders we exported are applied."""
    if not OrderBinding.objects.filter(system=MS).exclude(external_id="").exists():
        ctx.count("nothing_exported_yet")
        return
    since = ctx.since or (timezone.now() - FIRST_POLL_WINDOW)
    with MoySkladClient() as client:
        mapper = StateMapper(client)
        for page in client.iter_customerorder_pages(since=since):
            rows = [r for r in page.get("rows") or [] if isinstance(r, dict) and r.get("id")]
            ours = set(OrderBinding.objects.filter(system=MS, external_id__in=[r["id"] for r in rows])
                       .values_list("external_id", flat=True))
            ctx.count("not_ours", len(rows) - len(ours))
            for row in rows:
                if row["id"] not in ours:
                    continue
                try:
                    ctx.count(customerorder_import_record(client=client, row=row, mapper=mapper, by="moysklad-poll"))
                except MappingError as exc:
                    ctx.error(row["id"], str(exc))
            ctx.advance(len(page.get("rows") or []))
        ctx.count("requests", client.stats.requests)


def moysklad_order_url(order: Order) -> str | None:
    """The MoySklad UI link for the admin (the `uuidHref` MoySklad gave us: the UI's id differs
    from the API's). None until exported."""
    return OrderBinding.objects.filter(system=MS, order=order).exclude(ui_url="").values_list(
        "ui_url", flat=True).first()
