"""Order reads for the API, the admin and the exporter. Each returns what its caller renders in a
fixed number of queries (lines and history prefetched), never a query per row."""
from __future__ import annotations

import uuid

from django.db.models import Prefetch, QuerySet

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
    """The outbox: ids of orders MoySklad does not hold yet, oldest first."""
    pending = Order.objects.filter(export_state=ExportState.PENDING).order_by("id")
    return list(pending.values_list("pk", flat=True)[:limit])
