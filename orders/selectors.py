"""Order reads for the API, the admin and the exporter. Each returns what its caller renders in a
fixed number of queries (lines and history prefetched), never a query per row."""
from __future__ import annotations

import uuid

from django.db.models import F, FilteredRelation, Prefetch, Q, QuerySet

from .models import ExportState, Order, OrderLine, OrderStatusChange


def _detail_qs() -> QuerySet[Order]:
    return Order.objects.select_related("customer").prefetch_related(
        Prefetch("lines", queryset=OrderLine.objects.order_by("position", "id")),
        Prefetch("status_changes", queryset=OrderStatusChange.objects.order_by("id")),
    )


def order_get(*, order_id: int) -> Order | None:
    return _detail_qs().filter(pk=order_id).first()


def order_get_by_public_id(*, public_id: str) -> Order | None:
    """The storefront's id is the order's UUID (never a guessable sequence)."""
    try:
        uid = uuid.UUID(str(public_id))
    except (ValueError, TypeError):
        return None
    return _detail_qs().filter(uid=uid).first()


def order_list_export_pending(*, limit: int = 5000) -> list[int]:
    """The outbox: ids of orders MoySklad does not hold yet, oldest first (their MoySklad
    bindings still pending, by the binding's index on (export_state, id))."""
    from integrations.models import OrderBinding, System  # the outbox row is the order's binding

    pending = OrderBinding.objects.filter(system=System.MOYSKLAD, export_state=ExportState.PENDING).order_by("id")
    return list(pending.values_list("order_id", flat=True)[:limit])


#: what `order_with_export` adds to each order, read from its MoySklad binding
EXPORT_FIELDS = ("export_state", "export_attempts", "export_error", "exported_at")


def order_with_export(qs: QuerySet[Order]) -> QuerySet[Order]:
    """`qs` with each order's MoySklad export state (`export_state`, `export_attempts`,
    `export_error`, `exported_at`) read from its binding in the same query (one LEFT JOIN: an
    order has at most one MoySklad binding), so a list can show, filter and sort by it without a
    query per row."""
    return qs.alias(moysklad_binding=FilteredRelation("bindings", condition=Q(bindings__system="moysklad"))) \
        .annotate(**{name: F(f"moysklad_binding__{name}") for name in EXPORT_FIELDS})


DEFAULT_PAGE_SIZE = 100
MAX_PAGE_SIZE = 500


def order_list_changed(*, source: str | None = None, status: str | None = None, updated_since=None,
                       after: tuple | None = None, limit: int = DEFAULT_PAGE_SIZE) -> tuple[list[Order], tuple | None]:
    """Every channel's orders, oldest change first (keyset on (updated_at, id)): a page and the
    position after its last row (None on the last page). Lines and history are prefetched."""
    qs = _detail_qs()
    if source:
        qs = qs.filter(source=source)
    if status:
        qs = qs.filter(status=status)
    if updated_since is not None:
        qs = qs.filter(updated_at__gte=updated_since)
    if after is not None:
        moment, order_id = after
        qs = qs.filter(Q(updated_at__gt=moment) | Q(updated_at=moment, pk__gt=order_id))
    rows = list(qs.order_by("updated_at", "id")[:limit + 1])
    more = len(rows) > limit
    rows = rows[:limit]
    return rows, ((rows[-1].updated_at, rows[-1].pk) if more and rows else None)
