"""Warehouses and stock levels in the back office.

Stock figures come from upstream (MoySklad, 1C, suppliers) and are overwritten by the next sync,
so stock rows are view-only. A warehouse's name and archived flag are MoySklad's; its `code` is
ours (the storefront API shows it), set once when the warehouse first appears, and editable here.
The admin is an edge: it may show integration bindings beside the stock rows.
"""
from __future__ import annotations

from typing import Any

from django.contrib import admin
from django.http import HttpRequest

from integrations.models import WarehouseBinding
from syncsite.admin_tools import ReadOnlyAdminMixin, ReadOnlyTabularInline

from .models import StockLevel, Warehouse


class WarehouseBindingInline(ReadOnlyTabularInline):
    model = WarehouseBinding
    fields = ("system", "external_id", "external_code", "external_updated_at", "synced_at")
    readonly_fields = fields


@admin.register(Warehouse)
class WarehouseAdmin(admin.ModelAdmin):
    list_display = ("name", "code", "archived", "updated_at")
    list_filter = ("archived",)
    search_fields = ("name", "code")
    fields = ("name", "code", "archived", "updated_at")
    inlines = (WarehouseBindingInline,)

    def get_readonly_fields(self, request: HttpRequest, obj: Any = None) -> tuple[str, ...]:
        # A warehouse added by hand (e.g. for a supplier) needs a name; a synced one keeps MoySklad's.
        return ("updated_at",) if obj is None else ("name", "archived", "updated_at")

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False  # would cascade to stock rows and bindings; archive upstream instead


@admin.register(StockLevel)
class StockLevelAdmin(ReadOnlyAdminMixin, admin.ModelAdmin):
    list_display = ("offer__sku", "offer__name", "warehouse", "stock", "reserve", "available", "source",
                    "checked_at", "updated_at")
    list_filter = ("warehouse", "source")
    list_select_related = ("offer", "warehouse")
    search_fields = ("offer__sku", "offer__name", "offer__barcodes__value")
    search_help_text = "SKU, offer name or barcode"
    fields = ("offer", "warehouse", "stock", "reserve", "available", "source", "checked_at", "updated_at")
    readonly_fields = fields
    show_full_result_count = False  # offers × warehouses rows: skip the extra COUNT(*)
