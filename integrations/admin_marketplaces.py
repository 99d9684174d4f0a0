"""Marketplace stock in the admin: channel settings (buffers, cap, warehouses, health), every offer
per channel with its key, what we sent, what was accepted, when, and the error; the audit of
changes and the zero-on-channel alerts. Actions only mark rows and queue the push — no upstream
call is made in an admin request."""
from __future__ import annotations

from typing import Any

from django import forms
from django.contrib import admin, messages
from django.db.models import QuerySet
from django.http import HttpRequest
from django.utils import formats, timezone
from django.utils.translation import gettext_lazy as _, ngettext
from django.utils.html import format_html

from syncsite.admin_tools import ReadOnlyAdminMixin, admin_link

from .marketplaces import registry
from .marketplaces.services import channel_offer_edited, channel_offers_push_now, channel_settings_changed
from .models import Channel, ChannelOffer, ChannelWarehouse, StockAlert, StockAudit
from .services import EnqueueError, job_enqueue

_COLOURS = {"ok": "#2e7d32", "error": "#c62828", "pending": "#ef6c00", "unhealthy": "#c62828"}


def _badge(value: str, label: str) -> str:
    return format_html('<span style="color:#fff;background:{};padding:1px 6px;border-radius:3px">{}</span>',
                       _COLOURS.get(value, "#757575"), label)


class ChannelWarehouseInline(admin.TabularInline):
    model = ChannelWarehouse
    extra = 0
    autocomplete_fields = ()
    verbose_name = _("warehouse mapping")
    verbose_name_plural = _("warehouse mapping (our warehouse -> marketplace warehouse id; unmapped ones go to the one in settings)")


@admin.register(Channel)
class ChannelAdmin(admin.ModelAdmin):
    list_display = ("__str__", "enabled", "buffer_absolute", "buffer_percent", "cap", "warehouses_display",
                    "health_display", "health_changed_at")
    list_editable = ("enabled", "buffer_absolute", "buffer_percent", "cap")
    filter_horizontal = ("warehouses",)
    inlines = (ChannelWarehouseInline,)
    readonly_fields = ("system", "health", "health_message", "health_changed_at", "settings_changed_at",
                       "catalog_cursor", "catalog_synced_at")
    fieldsets = (
        (None, {"fields": ("system", "enabled")}),
        (_("What we publish"), {"fields": ("buffer_absolute", "buffer_percent", "cap", "warehouses"),
                             "description": _("available (stock − reserve) over the chosen warehouses (none = all), "
                                              "less the buffer, rounded down, never below 0, at most the cap")}),
        (_("Health"), {"fields": ("health", "health_message", "health_changed_at", "settings_changed_at",
                               "catalog_cursor", "catalog_synced_at")}),
    )
    actions = ("push_now", "push_full")

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False  # one row per marketplace, created by the push itself

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    @admin.display(description=_("draws from"))
    def warehouses_display(self, channel: Channel) -> str:
        names = [w.name for w in channel.warehouses.all()]
        return ", ".join(names) if names else _("all warehouses")

    @admin.display(description=_("health"), ordering="health")
    def health_display(self, channel: Channel) -> str:
        label = channel.get_health_display() + (f": {channel.health_message[:120]}" if channel.health_message else "")
        return _badge(channel.health, label)

    def save_related(self, request, form, formsets, change):
        super().save_related(request, form, formsets, change)
        # Buffers, cap, warehouses or the mapping may have changed: re-check every offer.
        channel_settings_changed(channel=form.instance)

    def _enqueue(self, request, full: bool) -> None:
        try:
            job_enqueue(job="marketplace-stock", full=full, trigger="admin")
        except EnqueueError as exc:
            self.message_user(request, str(exc), messages.ERROR)
            return
        self.message_user(request, _("Stock push of every offer queued: see Job runs for the result.") if full
                          else _("Stock push queued: see Job runs for the result."), messages.SUCCESS)

    @admin.action(description=_("Push changed stock now (all marketplaces)"), permissions=["change"])
    def push_now(self, request, queryset):
        self._enqueue(request, full=False)

    @admin.action(description=_("Push every offer now (full, all marketplaces)"), permissions=["change"])
    def push_full(self, request, queryset):
        self._enqueue(request, full=True)


class StockAuditInline(ReadOnlyAdminMixin, admin.TabularInline):
    model = StockAudit
    fields = ("at", "old", "new", "source")
    readonly_fields = fields
    extra = 0
    max_num = 0
    ordering = ("-at",)

    def get_queryset(self, request):
        return super().get_queryset(request).order_by("-at", "-id")


class ChannelOfferForm(forms.ModelForm):
    class Meta:
        model = ChannelOffer
        fields = "__all__"

    def clean(self):
        data = super().clean()
        channel, key = data.get("channel"), (data.get("external_key") or "").strip()
        if channel and key:
            problem = registry.get(channel.system).key_error(key)
            if problem:
                self.add_error("external_key", problem)
        return data


@admin.register(ChannelOffer)
class ChannelOfferAdmin(admin.ModelAdmin):
    form = ChannelOfferForm
    # Seven columns beside the filters, so Status and its error stay in view at 1280 px: sent and
    # accepted quantities share a column, as do the two times; the error sits under the status.
    list_display = ("offer_display", "channel", "external_key", "enabled", "figures_display", "times_display",
                    "status_display")
    list_filter = ("channel", "status", "enabled", "key_source")
    search_fields = ("offer__sku", "offer__name", "external_key")
    list_select_related = ("channel", "offer")
    show_full_result_count = False
    raw_id_fields = ("offer",)
    readonly_fields = ("published_qty", "published", "pushed_at", "synced_qty", "synced", "synced_at", "kicked_at",
                       "status", "error", "zero_since", "key_source")
    fieldsets = (
        (None, {"fields": ("channel", "offer", "external_key", "key_source", "enabled")}),
        (_("Buffer for this offer (empty: the channel's)"), {"fields": ("buffer_absolute", "buffer_percent")}),
        (_("What we sent and what was accepted"), {"fields": ("published_qty", "published", "pushed_at", "synced_qty",
                                                           "synced", "synced_at", "kicked_at", "status", "error",
                                                           "zero_since")}),
    )
    inlines = (StockAuditInline,)
    actions = ("push_now",)

    @admin.display(description=_("offer"), ordering="offer__sku")
    def offer_display(self, co: ChannelOffer) -> str:
        return admin_link(co.offer, f"{co.offer.sku} {co.offer.name[:60]}")

    @admin.display(description=_("status"), ordering="status")
    def status_display(self, co: ChannelOffer) -> str:
        badge = _badge(co.status, co.get_status_display())
        if not co.error:
            return badge
        return format_html('{}<div class="quiet" style="font-size:0.85em">{}</div>', badge, self.error_short(co))

    @admin.display(description=_("sent → accepted"))
    def figures_display(self, co: ChannelOffer) -> str:
        return format_html("{} → {}", _dash(co.published_qty), _dash(co.synced_qty))

    @admin.display(description=_("sent / reconciled"), ordering="synced_at")
    def times_display(self, co: ChannelOffer) -> str:
        return format_html("{}<br>{}", _when(co.pushed_at), _when(co.synced_at))

    @admin.display(description=_("error"))
    def error_short(self, co: ChannelOffer) -> str:
        return (co.error[:100] + "…") if len(co.error) > 100 else co.error

    def save_model(self, request, obj: ChannelOffer, form, change):
        super().save_model(request, obj, form, change)
        channel_offer_edited(channel_offer=obj, key_changed="external_key" in form.changed_data or not change)

    @admin.action(description=_("Push now (send the current figure within seconds)"), permissions=["change"])
    def push_now(self, request, queryset: QuerySet):
        n = channel_offers_push_now(ids=list(queryset.values_list("pk", flat=True)))
        self.message_user(request, ngettext("%(n)s offer will be pushed within seconds.",
                                            "%(n)s offers will be pushed within seconds.", n) % {"n": n},
                          messages.SUCCESS)


@admin.register(StockAudit)
class StockAuditAdmin(ReadOnlyAdminMixin, admin.ModelAdmin):
    list_display = ("at", "channel_offer", "old", "new", "source")
    list_filter = ("channel_offer__channel", "source")
    search_fields = ("channel_offer__offer__sku", "channel_offer__external_key")
    list_select_related = ("channel_offer__channel",)
    show_full_result_count = False


class _OpenFilter(admin.SimpleListFilter):
    title = _("state")
    parameter_name = "state"

    def lookups(self, request, model_admin):
        return (("open", _("open")), ("cleared", _("cleared")))

    def queryset(self, request, queryset):
        if self.value() == "open":
            return queryset.filter(cleared_at__isnull=True)
        if self.value() == "cleared":
            return queryset.filter(cleared_at__isnull=False)
        return queryset


@admin.register(StockAlert)
class StockAlertAdmin(ReadOnlyAdminMixin, admin.ModelAdmin):
    list_display = ("opened_at", "channel_offer", "message", "notified", "cleared_at")
    list_filter = (_OpenFilter, "channel_offer__channel", "notified")
    search_fields = ("channel_offer__offer__sku", "message")
    list_select_related = ("channel_offer__channel",)


def _dash(value) -> str:
    return "—" if value is None else str(value)


def _when(value) -> str:
    return formats.date_format(timezone.localtime(value), "SHORT_DATETIME_FORMAT") if value else "—"
