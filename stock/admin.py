"""Warehouses, stock levels, order holds and the stock change log in the back office.

Stock figures come from upstream (MoySklad, 1C, suppliers) and are overwritten by the next sync,
so stock rows are view-only; so are holds (orders place and end them) and the change log. A
warehouse's name and archived flag are MoySklad's; its `code` is ours (the storefront API shows
it), set once when the warehouse first appears, and editable here.
The admin is an edge: it may show integration bindings beside the stock rows.
"""
from __future__ import annotations

from typing import Any

from django.contrib import admin
from django.utils.translation import gettext_lazy as _
from django.http import HttpRequest

from integrations.models import WarehouseBinding
from syncsite.admin_tools import ReadOnlyAdminMixin, ReadOnlyTabularInline
from syncsite.csv_export import export_csv_action

from .models import StockChange, StockHold, StockLevel, Warehouse


class WarehouseBindingInline(ReadOnlyTabularInline):
    model = WarehouseBinding
    fields = ("system", "external_id", "external_code", "external_updated_at", "synced_at")
    readonly_fields = fields


@admin.register(Warehouse)
class WarehouseAdmin(admin.ModelAdmin):
    list_display = ("name", "code", "source", "ships_orders", "archived", "updated_at")
    list_filter = ("archived", "source", "ships_orders")
    search_fields = ("name", "code")
    fields = ("name", "code", "source", "ships_orders", "archived", "updated_at")
    inlines = (WarehouseBindingInline,)

    def get_readonly_fields(self, request: HttpRequest, obj: Any = None) -> tuple[str, ...]:
        # A warehouse added by hand (e.g. for a supplier) needs a name; a synced one keeps MoySklad's.
        return (("ships_orders", "updated_at",) if obj is None
                else ("name", "source", "ships_orders", "archived", "updated_at"))

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False  # would cascade to stock rows and bindings; archive upstream instead


@admin.register(StockLevel)
class StockLevelAdmin(ReadOnlyAdminMixin, admin.ModelAdmin):
    list_display = ("offer__sku", "offer__name", "warehouse", "stock", "reserve", "available", "source",
                    "checked_at", "updated_at")
    list_filter = ("warehouse", "source")
    list_select_related = ("offer", "warehouse")
    search_fields = ("offer__sku", "offer__name", "offer__barcodes__value")
    search_help_text = _("SKU, offer name or barcode")
    fields = ("offer", "warehouse", "stock", "reserve", "available", "source", "checked_at", "updated_at")
    readonly_fields = fields
    show_full_result_count = False  # offers × warehouses rows: skip the extra COUNT(*)


@admin.register(StockHold)
class StockHoldAdmin(ReadOnlyAdminMixin, admin.ModelAdmin):
    list_display = ("ref", "offer__sku", "warehouse", "quantity", "source", "created_at", "handed_over_at",
                    "handed_over_to", "released_at", "release_reason")
    list_filter = ("release_reason", "handed_over_to", "warehouse", "source")
    list_select_related = ("offer", "warehouse")
    search_fields = ("ref", "offer__sku")
    search_help_text = _("hold ref (orderline:ID) or SKU")
    date_hierarchy = "created_at"
    list_per_page = 100


@admin.register(StockChange)
class StockChangeAdmin(ReadOnlyAdminMixin, admin.ModelAdmin):
    """Every real change of a stock level: previous and new figures, who reported it and how."""

    list_display = ("at", "offer__sku", "warehouse", "source", "via", "stock_display", "reserve_display",
                    "available_display")
    list_filter = ("source", "via", "warehouse")
    list_select_related = ("offer", "warehouse")
    search_fields = ("offer__sku",)
    search_help_text = _("exact SKU")
    date_hierarchy = "at"
    list_per_page = 100
    show_full_result_count = False  # the log grows by the hundred thousand: skip the extra COUNT(*)
    actions = [export_csv_action(["at", "offer__sku", "warehouse__code", "source", "via", "previous_stock",
                                  "new_stock", "previous_reserve", "new_reserve", "previous_available",
                                  "new_available"], description=_("Export the selected changes to CSV"))]

    def get_search_results(self, request: HttpRequest, queryset, search_term: str):
        # An exact SKU walks the (offer, at) index; a substring search would scan the whole log.
        term = search_term.strip()
        if not term:
            return queryset, False
        return queryset.filter(offer__sku=term), False

    @admin.display(description=_("stock"))
    def stock_display(self, change: StockChange) -> str:
        return f"{_num(change.previous_stock)} → {_num(change.new_stock)}"

    @admin.display(description=_("reserve"))
    def reserve_display(self, change: StockChange) -> str:
        return f"{_num(change.previous_reserve)} → {_num(change.new_reserve)}"

    @admin.display(description=_("available"))
    def available_display(self, change: StockChange) -> str:
        return f"{_num(change.previous_available)} → {_num(change.new_available)}"


def _num(value) -> str:
    """5.000 -> "5", 2.500 -> "2.5"."""
    return f"{value.normalize():f}"
