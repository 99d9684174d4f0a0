"""Orders in the back office: one list for every channel, an order page with lines, status
history and the MoySklad link.

Statuses are the warehouse's to set (managers move orders in MoySklad and the site follows), so
the order page is read-only apart from two actions that call services: cancel (gives unexported
orders' reserved units back) and re-queue a failed export. The admin is an edge: it may show the
integration binding beside the order.
"""
from __future__ import annotations

from typing import Any

from django.contrib import admin, messages
from django.db.models import QuerySet
from django.http import HttpRequest
from django.utils.html import format_html, format_html_join
from django.utils.safestring import mark_safe

from integrations.models import OrderBinding
from syncsite.admin_tools import ReadOnlyTabularInline, admin_link

from . import selectors, services
from stock.selectors import stock_holds_list

from .models import Customer, ExportState, Order, OrderLine, OrderStatus, OrderStatusChange


class OrderLineInline(ReadOnlyTabularInline):
    model = OrderLine
    fields = ("position", "sku", "name", "quantity", "price", "line_total", "shipped_quantity")
    readonly_fields = fields

    @admin.display(description="total")
    def line_total(self, line: OrderLine) -> Any:
        return line.total


class StatusChangeInline(ReadOnlyTabularInline):
    model = OrderStatusChange
    verbose_name_plural = "status history"
    fields = ("at", "from_status", "to_status", "by", "note", "notified_at")
    readonly_fields = fields
    ordering = ("at", "id")


class OrderBindingInline(ReadOnlyTabularInline):
    model = OrderBinding
    verbose_name_plural = "MoySklad"
    fields = ("system", "external_id", "external_code", "export_state", "export_attempts", "exported_at",
              "create_attempted_at", "external_updated_at", "synced_at")
    readonly_fields = fields


class ExportStateFilter(admin.SimpleListFilter):
    title = "export"
    parameter_name = "export"

    def lookups(self, request, model_admin):
        return ExportState.choices

    def queryset(self, request, queryset):
        # The state is the MoySklad binding's, annotated on every row by OrderAdmin.get_queryset.
        return queryset.filter(export_state=self.value()) if self.value() else queryset


@admin.register(Order)
class OrderAdmin(admin.ModelAdmin):
    list_display = ("number", "created_at", "source", "status_display", "export_display", "customer_display",
                    "total")
    list_filter = ("source", "status", ExportStateFilter, "created_at")
    search_fields = ("number", "uid", "source_order_id", "customer_name", "customer_email", "customer_phone",
                     "lines__sku")
    date_hierarchy = "created_at"
    list_per_page = 100
    ordering = ("-created_at", "-id")
    inlines = (OrderLineInline, StatusChangeInline, OrderBindingInline)
    actions = ("cancel_orders", "requeue_export")
    readonly_fields = ("number", "uid", "source", "source_order_id", "status", "status_changed_at", "customer_name",
                       "customer_email", "customer_phone", "customer_link",
                       "total", "currency", "shipping_method", "shipping_address", "comment", "idempotency_key",
                       "export_state_display", "export_attempts_display", "export_error_display",
                       "exported_at_display", "moysklad_link",
                       "reservations_display", "created_at", "updated_at")
    fieldsets = (
        (None, {"fields": ("number", "uid", "source", "source_order_id", "status", "status_changed_at", "total",
                           "currency")}),
        # The contacts this order was placed with; the linked customer may have others.
        ("Customer", {"fields": ("customer_name", "customer_email", "customer_phone", "customer_link")}),
        ("Delivery", {"fields": ("shipping_method", "shipping_address", "comment")}),
        ("MoySklad", {"fields": ("moysklad_link", "export_state_display", "export_attempts_display",
                                 "export_error_display", "exported_at_display", "reservations_display")}),
        ("Technical", {"classes": ("collapse",), "fields": ("idempotency_key", "created_at", "updated_at")}),
    )

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False  # orders come from the storefront and the marketplaces

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False  # cancel instead: history and MoySklad must agree

    @admin.display(description="status", ordering="status")
    def status_display(self, order: Order) -> str:
        colours = {"cancelled": "#a00", "returned": "#a60", "completed": "#070", "shipped": "#070"}
        colour = colours.get(order.status, "#333")
        return format_html('<span style="color:{}">{}</span>', colour, order.get_status_display())

    def get_queryset(self, request: HttpRequest) -> QuerySet[Order]:
        # The export state lives on the order's MoySklad binding: joined in, never a query per row.
        return selectors.order_with_export(super().get_queryset(request))

    @admin.display(description="export", ordering="export_state")
    def export_display(self, order: Order) -> str:
        if order.export_state == ExportState.FAILED:
            return format_html('<span style="color:#a00" title="{}">failed</span>', order.export_error)
        return dict(ExportState.choices).get(order.export_state, "—")

    @admin.display(description="export state")
    def export_state_display(self, order: Order) -> str:
        return dict(ExportState.choices).get(order.export_state, "—")

    @admin.display(description="export attempts")
    def export_attempts_display(self, order: Order) -> Any:
        return order.export_attempts

    @admin.display(description="export error")
    def export_error_display(self, order: Order) -> str:
        return order.export_error or ""

    @admin.display(description="exported at")
    def exported_at_display(self, order: Order) -> Any:
        return order.exported_at

    @admin.display(description="customer", ordering="customer_name")
    def customer_display(self, order: Order) -> str:
        return f"{order.customer_name} <{order.customer_email or order.customer_phone}>"

    @admin.display(description="linked customer")
    def customer_link(self, order: Order) -> str:
        return admin_link(order.customer)

    @admin.display(description="open in MoySklad")
    def moysklad_link(self, order: Order) -> str:
        binding = OrderBinding.objects.filter(order=order).first()
        if binding is None or not binding.external_id:
            return "not in MoySklad yet"
        if binding.ui_url:
            return format_html('<a href="{}" target="_blank" rel="noopener">{}</a>', binding.ui_url,
                               binding.external_id)
        return binding.external_id

    @admin.display(description="stock held for this order")
    def reservations_display(self, order: Order) -> str:
        rows = stock_holds_list(refs=services.order_hold_refs(order=order))
        if not rows:
            return "—"
        return format_html_join(mark_safe("<br>"), "{} × {} @ {}: {}", (
            (r.offer.sku, f"{r.quantity:g}", r.warehouse.code, _hold_state(r)) for r in rows))

    @admin.action(description="Cancel the selected orders")
    def cancel_orders(self, request: HttpRequest, queryset: QuerySet[Order]) -> None:
        done = 0
        for order in queryset.exclude(status__in=[OrderStatus.CANCELLED, OrderStatus.COMPLETED]):
            if services.order_status_set(order=order, status=OrderStatus.CANCELLED,
                                         by=f"admin:{request.user.get_username()}"[:64]):
                done += 1
        self.message_user(request, f"Cancelled {done} order(s). Cancel them in MoySklad too if they were exported.",
                          messages.SUCCESS)

    @admin.action(description="Retry the MoySklad export of failed orders")
    def requeue_export(self, request: HttpRequest, queryset: QuerySet[Order]) -> None:
        n = services.order_export_requeue(order_ids=queryset.values_list("pk", flat=True))
        self.message_user(request, f"{n} order(s) back in the export queue (exported within a minute).",
                          messages.SUCCESS)


@admin.register(Customer)
class CustomerAdmin(admin.ModelAdmin):
    list_display = ("name", "email", "phone", "created_at")
    search_fields = ("name", "email", "phone", "phone_digits", "uid")
    readonly_fields = ("uid", "phone_digits", "created_at", "updated_at")
    list_per_page = 100


def _hold_state(hold) -> str:
    if hold.released_at:
        return f"released ({hold.release_reason})"
    if hold.handed_over_at:
        return f"held until {hold.handed_over_to} counts it in its reserve"
    return "held"
