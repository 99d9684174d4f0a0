"""One status machine for every channel's orders.

* The allowed transitions of the unified statuses (interfaces.md): forward along
  pending → confirmed → processing → partially_shipped → shipped → completed (steps may be
  skipped), `cancelled` from anything not yet shipped, `returned` from anything shipped.
  Cancelled and returned are final.
* The mapping tables (models `StatusMapping`, `ActionMapping`), seeded with the defaults below and
  edited by managers in the admin.
* `status_change` is the route people take (the admin): an illegal transition is refused with a
  message; a legal one is recorded by `orders.services.order_status_set` and planned for the
  marketplace by the outbox. Changes from MoySklad take `order_upstream_apply` as before and are
  checked when the outbox plans them (an illegal one is recorded as refused on the order).
"""
from __future__ import annotations

from typing import Iterable

from django.db import transaction

from orders import services as order_services
from orders.models import Order, OrderSource, OrderStatus, OrderStatusChange

from .models import Action, ActionMapping, StatusMapping

S = OrderStatus
PROGRESS = (S.PENDING, S.CONFIRMED, S.PROCESSING, S.PARTIALLY_SHIPPED, S.SHIPPED, S.COMPLETED)
CANCELLABLE = (S.PENDING, S.CONFIRMED, S.PROCESSING, S.PARTIALLY_SHIPPED)
RETURNABLE = (S.PARTIALLY_SHIPPED, S.SHIPPED, S.COMPLETED)
FINAL = (S.CANCELLED, S.RETURNED)


class IllegalTransition(Exception):
    """The order cannot go from its status to the one asked for; the message says why."""


def allowed(current: str, target: str) -> bool:
    if current == target:
        return True
    if target == S.CANCELLED:
        return current in CANCELLABLE
    if target == S.RETURNED:
        return current in RETURNABLE
    if current in PROGRESS and target in PROGRESS:
        return PROGRESS.index(target) > PROGRESS.index(current)
    return False


def next_statuses(current: str) -> list[str]:
    return [s for s in S.values if s != current and allowed(current, s)]


def check(current: str, target: str) -> None:
    if target not in S.values:
        raise IllegalTransition(f"unknown status {target!r}")
    if not allowed(current, target):
        options = ", ".join(next_statuses(current)) or "none: the status is final"
        raise IllegalTransition(f"an order cannot go from {current} to {target} (allowed from {current}: {options})")


# ------------------------------------------------------------------------------------------------
# Defaults of the mapping tables (facts sheets: ozon.md §4.5/§5, wildberries.md §5, yandex-market.md §4)
# ------------------------------------------------------------------------------------------------
DEFAULT_STATUS_MAP: dict[str, dict[str, str]] = {
    OrderSource.OZON: {
        "awaiting_registration": S.PENDING, "acceptance_in_progress": S.PENDING, "awaiting_approve": S.PENDING,
        "awaiting_packaging": S.CONFIRMED, "awaiting_deliver": S.PROCESSING, "arbitration": "",
        "client_arbitration": "", "awaiting_verification": "", "delivering": S.SHIPPED, "driver_pickup": S.SHIPPED,
        "sent_by_seller": S.SHIPPED, "delivered": S.COMPLETED, "cancelled": S.CANCELLED,
        "cancelled_from_split_pending": S.CANCELLED, "not_accepted": "",
    },
    OrderSource.WB: {
        "supplier:new": S.CONFIRMED, "supplier:confirm": S.PROCESSING, "supplier:complete": S.SHIPPED,
        "supplier:cancel": S.CANCELLED, "supplier:cancel_carrier": S.CANCELLED,
        "wb:waiting": "", "wb:sorted": "", "wb:accepted_by_carrier": "", "wb:sent_to_carrier": "",
        "wb:postponed_delivery": "", "wb:ready_for_pickup": S.SHIPPED, "wb:sold": S.COMPLETED,
        "wb:canceled": S.CANCELLED, "wb:declined_by_client": S.CANCELLED, "wb:canceled_by_carrier": S.CANCELLED,
        "wb:canceled_by_client": S.RETURNED, "wb:defect": S.CANCELLED,
    },
    OrderSource.YM: {
        "PLACING": S.PENDING, "RESERVED": S.PENDING, "UNPAID": S.PENDING, "PENDING": S.PENDING,
        "PROCESSING": S.CONFIRMED, "PROCESSING/STARTED": S.CONFIRMED, "PROCESSING/READY_TO_SHIP": S.PROCESSING,
        "PROCESSING/SHIPPED": S.SHIPPED, "DELIVERY": S.SHIPPED, "PICKUP": S.SHIPPED, "DELIVERED": S.COMPLETED,
        "CANCELLED": S.CANCELLED, "PARTIALLY_RETURNED": "", "RETURNED": S.RETURNED, "UNKNOWN": "",
    },
}

DEFAULT_ACTION_MAP: dict[str, dict[str, str]] = {
    OrderSource.OZON: {S.PROCESSING: Action.OZON_SHIP, S.PARTIALLY_SHIPPED: Action.OZON_SHIP,
                       S.SHIPPED: Action.OZON_SHIP, S.CANCELLED: Action.OZON_CANCEL},
    OrderSource.WB: {S.PROCESSING: Action.WB_SUPPLY_ADD, S.PARTIALLY_SHIPPED: Action.WB_SUPPLY_ADD,
                     S.SHIPPED: Action.WB_DELIVER, S.CANCELLED: Action.WB_CANCEL},
    OrderSource.YM: {S.PROCESSING: Action.YM_READY_TO_SHIP, S.PARTIALLY_SHIPPED: Action.YM_READY_TO_SHIP,
                     S.SHIPPED: Action.YM_READY_TO_SHIP, S.CANCELLED: Action.YM_CANCEL},
}


def mappings_seed() -> int:
    """Add the default rows we do not have yet (existing rows, edited or not, are kept)."""
    added = 0
    for source, table in DEFAULT_STATUS_MAP.items():
        have = set(StatusMapping.objects.filter(source=source).values_list("marketplace_status", flat=True))
        rows = [StatusMapping(source=source, marketplace_status=k, status=v) for k, v in table.items() if k not in have]
        StatusMapping.objects.bulk_create(rows, ignore_conflicts=True)
        added += len(rows)
    for source, table in DEFAULT_ACTION_MAP.items():
        have = set(ActionMapping.objects.filter(source=source).values_list("status", flat=True))
        rows = [ActionMapping(source=source, status=s, action=table.get(s, "")) for s in S.values if s not in have]
        ActionMapping.objects.bulk_create(rows, ignore_conflicts=True)
        added += len(rows)
    return added


class StatusMapper:
    """Marketplace status keys -> our status, read once per run. The first key (of the candidates
    an order offers, most specific first) that has a non-empty row wins; keys never seen before
    are added as empty rows so managers see them."""

    def __init__(self) -> None:
        self._map: dict[tuple[str, str], str] | None = None

    def _load(self) -> dict[tuple[str, str], str]:
        if self._map is None:
            if not StatusMapping.objects.exists():
                mappings_seed()
            self._map = {(r.source, r.marketplace_status): r.status for r in StatusMapping.objects.all()}
        return self._map

    def status_for(self, source: str, keys: Iterable[str]) -> str | None:
        table = self._load()
        keys = [k for k in keys if k]
        for key in keys:
            if (source, key) not in table:
                StatusMapping.objects.get_or_create(source=source, marketplace_status=key[:64],
                                                    defaults={"status": "", "seeded": True})
                table[(source, key)] = ""
            if table[(source, key)]:
                return table[(source, key)]
        return None


def action_for(source: str, status: str) -> str:
    row = ActionMapping.objects.filter(source=source, status=status).values_list("action", flat=True).first()
    if row is None:
        return DEFAULT_ACTION_MAP.get(source, {}).get(status, "")
    return row


# ------------------------------------------------------------------------------------------------
# The manual route
# ------------------------------------------------------------------------------------------------
def status_change(*, order: Order | int, status: str, by: str, note: str = "") -> OrderStatusChange | None:
    """Move an order through the machine (the admin's route). Raises IllegalTransition with a
    message people read; returns the history row (None: already there). For a marketplace
    order the outbox then tells the marketplace."""
    order_id = order.pk if isinstance(order, Order) else order
    with transaction.atomic():
        locked = Order.objects.select_for_update().get(pk=order_id)
        check(locked.status, status)
        # A marketplace order's change kicks the outbox after commit (orders.services' hook).
        return order_services.order_status_set(order=locked.pk, status=status, by=by, note=note)
