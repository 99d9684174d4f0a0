"""Suppliers in the admin: settings (the token is write-only: typed in, stored encrypted, never
shown back), last read, unmapped SKU count (linked to catalog's ExternalSku work list), a
"read now" action that only enqueues, and the webhook events."""
from __future__ import annotations

from django import forms
from django.contrib import admin, messages
from django.db.models import QuerySet
from django.http import HttpRequest
from django.urls import reverse
from django.utils.html import format_html

from catalog.models import ExternalSku
from syncsite.admin_tools import ReadOnlyAdminMixin

from .models import Supplier, SupplierEvent


class SupplierForm(forms.ModelForm):
    new_token = forms.CharField(
        required=False, label="Token", widget=forms.PasswordInput(render_value=False),
        help_text="Bearer token for the supplier's API or feed. Stored encrypted and never shown; "
                  "leave empty to keep the current one.")
    clear_token = forms.BooleanField(required=False, label="Remove the stored token")
    url = forms.URLField(max_length=1024, assume_scheme="https",
                         help_text="API base URL, or the feed's URL (http or https)")

    class Meta:
        model = Supplier
        exclude = ("token_encrypted", "delta_cursor", "last_sync_at", "last_full_at", "last_status",
                   "last_message", "last_counts")
        widgets = {"webhook_secret": forms.PasswordInput(render_value=True)}

    def save(self, commit: bool = True):
        supplier = super().save(commit=False)
        if self.cleaned_data.get("clear_token"):
            supplier.token = ""
        elif self.cleaned_data.get("new_token"):
            supplier.token = self.cleaned_data["new_token"]
        if commit:
            supplier.save()
        return supplier


@admin.register(Supplier)
class SupplierAdmin(admin.ModelAdmin):
    form = SupplierForm
    list_display = ("slug", "name", "kind", "active", "live_check", "zero_missing", "last_sync_at", "last_status",
                    "unmapped")
    list_filter = ("active", "kind", "live_check")
    search_fields = ("slug", "name", "url")
    readonly_fields = ("token_set", "last_sync_at", "last_full_at", "last_status", "last_message", "last_counts",
                       "delta_cursor")
    actions = ("read_now", "read_full_now")
    fieldsets = (
        (None, {"fields": ("slug", "name", "active", "kind", "url", "new_token", "clear_token", "token_set",
                           "webhook_secret")}),
        ("Reading", {"fields": ("page_size", "zero_missing", "live_check", "fresh_seconds")}),
        ("API dialect", {"fields": ("api_dialect",), "classes": ("collapse",)}),
        ("CSV", {"fields": ("csv_sku_column", "csv_stock_column", "csv_delimiter", "csv_encoding"),
                 "classes": ("collapse",)}),
        ("YML", {"fields": ("yml_sku_source", "yml_in_stock_quantity"), "classes": ("collapse",)}),
        ("Last read", {"fields": ("last_sync_at", "last_full_at", "last_status", "last_message", "last_counts",
                                  "delta_cursor")}),
    )

    @admin.display(description="token", boolean=True)
    def token_set(self, supplier: Supplier) -> bool:
        return bool(supplier.token_encrypted)

    @admin.display(description="unmapped SKUs")
    def unmapped(self, supplier: Supplier) -> str:
        count = ExternalSku.objects.filter(source=supplier.source, offer__isnull=True).count()
        if not count:
            return "0"
        url = reverse("admin:catalog_externalsku_changelist") + f"?source={supplier.source}"
        return format_html('<a href="{}">{}</a>', url, count)

    def _enqueue(self, request: HttpRequest, queryset: QuerySet, full: bool) -> None:
        from syncsite import publish as publisher

        from .tasks import supplier_read_task

        sent = sum(1 for s in queryset.filter(active=True) if publisher.publish(supplier_read_task, s.slug, full))
        self.message_user(request, f"{sent} supplier read(s) queued", messages.SUCCESS if sent else messages.WARNING)

    @admin.action(description="Read stock now (delta)")
    def read_now(self, request: HttpRequest, queryset: QuerySet) -> None:
        self._enqueue(request, queryset, False)

    @admin.action(description="Read all stock now (full)")
    def read_full_now(self, request: HttpRequest, queryset: QuerySet) -> None:
        self._enqueue(request, queryset, True)


@admin.register(SupplierEvent)
class SupplierEventAdmin(ReadOnlyAdminMixin, admin.ModelAdmin):
    list_display = ("received_at", "supplier", "items", "status", "attempts", "error", "processed_at")
    list_filter = ("status", "supplier")
    readonly_fields = ("supplier", "signature", "signed_at", "payload", "items", "status", "attempts", "error",
                       "counts", "received_at", "processed_at")
