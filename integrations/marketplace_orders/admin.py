"""Marketplace orders in the admin: the one order list gains the marketplace columns (link,
flagged lines, last action and its error) and manual status changes through the machine; the
mapping tables are edited here; the outbox and the returns are listed. No upstream is called in an
admin request: a status change is recorded and the outbox (a task after commit) tells the
marketplace."""
from __future__ import annotations

from typing import Any

from django.contrib import admin, messages
from django.db.models import Prefetch, QuerySet
from django.http import HttpRequest
from django.utils import timezone
from django.utils.html import format_html

from orders.admin import OrderAdmin as BaseOrderAdmin
from orders.models import Order, OrderLine, OrderStatus
from syncsite.admin_tools import ReadOnlyTabularInline, admin_link
from syncsite.csv_export import export_csv_action

from . import machine, outbox
from .models import (
    ActionMapping,
    ActionState,
    ChannelOrder,
    MarketplaceAction,
    MarketplaceReturn,
    StatusMapping,
    WbSupply,
)


def marketplace_url(order: Order) -> str | None:
    """The order in its marketplace's seller cabinet."""
    if order.source == "ozon":
        return f"https://seller.ozon.ru/app/postings/fbs?search={order.source_order_id}"
    if order.source == "wb":
        return "https://seller.wildberries.ru/marketplace-orders/new-tasks"
    if order.source == "ym":
        data = getattr(getattr(order, "channel_order", None), "data", None) or {}
        campaign = data.get("campaign_id") or ""
        return f"https://partner.market.yandex.ru/supplier/{campaign}/orders/{order.source_order_id}"
    return None


class ActionInline(ReadOnlyTabularInline):
    model = MarketplaceAction
    fk_name = "order"
    verbose_name_plural = "marketplace actions"
    fields = ("created_at", "target", "action", "to_status", "state", "attempts", "error", "done_at")
    readonly_fields = fields
    ordering = ("id",)

    def get_queryset(self, request):
        return super().get_queryset(request).exclude(state=ActionState.SKIPPED)


class FlaggedLineInline(ReadOnlyTabularInline):
    model = OrderLine
    verbose_name_plural = "flagged lines (unknown SKU: held nowhere, not in MoySklad)"
    fields = ("sku", "external_sku", "name", "quantity", "price")
    readonly_fields = fields

    def get_queryset(self, request):
        return super().get_queryset(request).filter(flagged=True)


class ReturnInline(ReadOnlyTabularInline):
    model = MarketplaceReturn
    fk_name = "order"
    fields = ("return_id", "kind", "marketplace_status", "lines", "restore", "restored_via", "restored_at")
    readonly_fields = fields


def _status_action(target: str):
    def action(modeladmin, request: HttpRequest, queryset: QuerySet[Order]) -> None:
        done, refused = 0, []
        by = f"admin:{request.user.get_username()}"[:64]
        for order in queryset:
            try:
                if machine.status_change(order=order, status=target, by=by):
                    done += 1
            except machine.IllegalTransition as exc:
                refused.append(f"{order.number}: {exc}")
        if done:
            modeladmin.message_user(request, f"{done} order(s) moved to {target}; marketplaces are told by the "
                                             f"outbox within a minute.", messages.SUCCESS)
        for message in refused[:20]:
            modeladmin.message_user(request, message, messages.ERROR)

    action.__name__ = f"status_to_{target}"
    action.short_description = f"Set status: {target} (through the status machine)"
    return action


admin.site.unregister(Order)


@admin.register(Order)
class OrderAdmin(BaseOrderAdmin):
    """Every channel's orders in one list."""

    list_display = ("number", "created_at", "source", "source_order_id", "status_display", "channel_status",
                    "flag_display", "last_action", "export_display", "customer_display", "total")
    list_filter = ("source", "status", "flagged", *BaseOrderAdmin.list_filter[2:])
    inlines = (*BaseOrderAdmin.inlines, FlaggedLineInline, ActionInline, ReturnInline)
    actions = ("cancel_orders", "requeue_export", "retry_actions",
               *[_status_action(s) for s in (OrderStatus.CONFIRMED, OrderStatus.PROCESSING, OrderStatus.SHIPPED,
                                             OrderStatus.COMPLETED, OrderStatus.RETURNED)],
               export_csv_action(["number", "created_at", "source", "source_order_id", "status", "customer_name",
                                  "customer_email", "customer_phone", "total", "currency", "export_state",
                                  "exported_at"], description="Export the selected orders to CSV"))
    readonly_fields = (*BaseOrderAdmin.readonly_fields, "marketplace_link", "source_status", "placed_at",
                       "source_updated_at", "flagged")
    fieldsets = (*BaseOrderAdmin.fieldsets[:1],
                 ("Marketplace", {"fields": ("marketplace_link", "source_status", "placed_at", "source_updated_at",
                                             "flagged")}),
                 *BaseOrderAdmin.fieldsets[1:])

    def get_queryset(self, request: HttpRequest) -> QuerySet[Order]:
        # Each row's last action in one query for the page (a sliced prefetch), not one per row.
        last = MarketplaceAction.objects.exclude(state=ActionState.SKIPPED).order_by("-id")[:1]
        return super().get_queryset(request).select_related("channel_order").prefetch_related(
            Prefetch("marketplace_actions", queryset=last, to_attr="last_actions"))

    @admin.display(description="channel status", ordering="source_status")
    def channel_status(self, order: Order) -> str:
        return order.source_status or "—"

    @admin.display(description="flagged", ordering="flagged", boolean=True)
    def flag_display(self, order: Order) -> bool:
        return order.flagged

    @admin.display(description="last action")
    def last_action(self, order: Order) -> str:
        row = next(iter(getattr(order, "last_actions", ())), None)
        if row is None:
            return "—"
        colour = {"failed": "#a00", "refused": "#a00", "pending": "#a60", "done": "#070"}.get(row.state, "#333")
        return format_html('<span style="color:{}" title="{}">{} {}</span>', colour, row.error,
                           row.get_action_display() or row.to_status, row.get_state_display())

    @admin.display(description="open in the marketplace")
    def marketplace_link(self, order: Order) -> str:
        url = marketplace_url(order)
        if not url:
            return "—"
        return format_html('<a href="{}" target="_blank" rel="noopener">{} {}</a>', url,
                           order.get_source_display(), order.source_order_id)

    @admin.action(description="Cancel the selected orders (through the status machine)")
    def cancel_orders(self, request: HttpRequest, queryset: QuerySet[Order]) -> None:
        _status_action(OrderStatus.CANCELLED)(self, request, queryset)

    @admin.action(description="Retry failed marketplace actions of the selected orders")
    def retry_actions(self, request: HttpRequest, queryset: QuerySet[Order]) -> None:
        n = MarketplaceAction.objects.filter(order__in=queryset, state=ActionState.FAILED).update(
            state=ActionState.PENDING, attempts=0, next_attempt_at=timezone.now())
        outbox.kick()
        self.message_user(request, f"{n} action(s) queued again.", messages.SUCCESS)


@admin.register(StatusMapping)
class StatusMappingAdmin(admin.ModelAdmin):
    list_display = ("source", "marketplace_status", "status", "seeded", "updated_at")
    list_editable = ("status",)
    list_filter = ("source", "status")
    search_fields = ("marketplace_status",)
    readonly_fields = ("seeded", "updated_at")

    def save_model(self, request, obj, form, change):
        obj.seeded = False
        super().save_model(request, obj, form, change)


@admin.register(ActionMapping)
class ActionMappingAdmin(admin.ModelAdmin):
    list_display = ("source", "status", "action", "updated_at")
    list_editable = ("action",)
    list_filter = ("source",)


@admin.register(MarketplaceAction)
class MarketplaceActionAdmin(admin.ModelAdmin):
    list_display = ("id", "created_at", "order_link", "target", "action", "to_status", "state", "attempts",
                    "next_attempt_at", "short_error")
    list_filter = ("state", "source", "target", "action")
    search_fields = ("order__number", "order__source_order_id", "error")
    list_select_related = ("order",)
    actions = ("retry",)
    readonly_fields = [f.name for f in MarketplaceAction._meta.fields]

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    @admin.display(description="order")
    def order_link(self, row: MarketplaceAction) -> str:
        return admin_link(row.order)

    @admin.display(description="error")
    def short_error(self, row: MarketplaceAction) -> str:
        return (row.error or "")[:120]

    @admin.action(description="Run again (failed or waiting actions)")
    def retry(self, request: HttpRequest, queryset: QuerySet[MarketplaceAction]) -> None:
        n = queryset.filter(state__in=[ActionState.FAILED, ActionState.PENDING]).update(
            state=ActionState.PENDING, attempts=0, next_attempt_at=timezone.now())
        outbox.kick()
        self.message_user(request, f"{n} action(s) queued.", messages.SUCCESS)


@admin.register(MarketplaceReturn)
class MarketplaceReturnAdmin(admin.ModelAdmin):
    list_display = ("created_at", "source", "return_id", "order_link", "source_order_id", "kind",
                    "marketplace_status", "received", "restore", "restored_via", "flagged", "notified_at")
    list_filter = ("source", "restore", "flagged", "received")
    search_fields = ("return_id", "source_order_id", "order__number")
    list_select_related = ("order",)
    readonly_fields = [f.name for f in MarketplaceReturn._meta.fields if f.name != "flagged"]

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    @admin.display(description="order")
    def order_link(self, row: MarketplaceReturn) -> Any:
        return admin_link(row.order) if row.order else format_html('<span style="color:#a00">{}</span>', "unknown")


@admin.register(WbSupply)
class WbSupplyAdmin(admin.ModelAdmin):
    list_display = ("name", "supply_id", "warehouse_id", "cargo_type", "done", "created_at")
    readonly_fields = ("name", "supply_id", "warehouse_id", "cargo_type", "created_at")


@admin.register(ChannelOrder)
class ChannelOrderAdmin(admin.ModelAdmin):
    list_display = ("order", "source", "alt_id", "pulled_at")
    search_fields = ("alt_id", "order__number", "order__source_order_id")
    readonly_fields = ("order", "source", "alt_id", "data", "pulled_at")
