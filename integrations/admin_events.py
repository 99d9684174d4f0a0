"""Admin for issue 3's integration state: inbound webhook events (status, attempts, error, a
"reprocess" action), the MoySklad state -> status mapping (editable), order and customer
bindings (read-only). Actions only change rows and enqueue; no upstream call in a request."""
from __future__ import annotations

from typing import Any

from django.contrib import admin, messages
from django.db.models import QuerySet
from django.http import HttpRequest
from django.utils.translation import gettext_lazy as _, ngettext
from django.utils.html import format_html

from syncsite.admin_tools import BindingAdmin, ReadOnlyAdminMixin, admin_link, short

from .models import CustomerBinding, InboundEvent, OrderBinding, OrderStateMapping


@admin.register(InboundEvent)
class InboundEventAdmin(ReadOnlyAdminMixin, admin.ModelAdmin):
    list_display = ("received_at", "system", "entity_type", "action", "status_display", "attempts", "error_short",
                    "processed_at")
    list_filter = ("status", "system", "entity_type", "action")
    search_fields = ("dedup_key", "request_id", "entity_href", "error")
    date_hierarchy = "received_at"
    list_per_page = 100
    actions = ("reprocess",)
    readonly_fields = ("system", "dedup_key", "request_id", "entity_type", "action", "entity_href", "payload",
                       "status", "attempts", "error", "received_at", "claimed_at", "processed_at")

    def get_queryset(self, request: HttpRequest) -> QuerySet:
        qs = super().get_queryset(request)
        # The payload can be large; the list never shows it.
        return qs.defer("payload") if request.resolver_match and request.resolver_match.url_name.endswith(
            "changelist") else qs

    @admin.display(description=_("status"), ordering="status")
    def status_display(self, event: InboundEvent) -> str:
        colour = {"failed": "#a00", "received": "#a60", "processing": "#06a", "done": "#070"}.get(event.status, "#555")
        return format_html('<span style="color:{}">{}</span>', colour, event.get_status_display())

    @admin.display(description=_("error"))
    def error_short(self, event: InboundEvent) -> str:
        return short(event.error, 100)

    @admin.action(description=_("Reprocess the selected events"), permissions=["reprocess"])
    def reprocess(self, request: HttpRequest, queryset: QuerySet[InboundEvent]) -> None:
        from .moysklad.events import events_reprocess

        n = events_reprocess(event_ids=list(queryset.values_list("pk", flat=True)))
        self.message_user(request, ngettext("%(n)s event queued again.", "%(n)s events queued again.", n) % {"n": n},
                          messages.SUCCESS)

    # The rows are read-only; re-queuing them needs the change permission (the manager role has it,
    # read-only does not).
    def has_reprocess_permission(self, request: HttpRequest) -> bool:
        return request.user.is_staff and request.user.has_perm("integrations.change_inboundevent")


@admin.register(OrderStateMapping)
class OrderStateMappingAdmin(admin.ModelAdmin):
    list_display = ("name", "status", "state_id", "seeded", "updated_at")
    list_editable = ("status",)
    list_filter = ("system", "status", "seeded")
    search_fields = ("name", "state_id")
    readonly_fields = ("system", "state_id", "name", "seeded", "updated_at")
    fields = ("system", "name", "state_id", "status", "seeded", "updated_at")

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False  # rows come from the account's states (seeded on first use or by moysklad_webhooks register)

    def save_model(self, request: HttpRequest, obj: OrderStateMapping, form, change: bool) -> None:
        obj.seeded = False  # a manager's choice: never overwritten by seeding
        super().save_model(request, obj, form, change)


@admin.register(OrderBinding)
class OrderBindingAdmin(BindingAdmin):
    """An order in MoySklad: its link and its export state (the outbox row), in one row."""

    local_field = "order"
    list_filter = ("system", "export_state")
    search_fields = ("external_id", "external_code", "order__number")

    def get_list_display(self, request: HttpRequest) -> tuple:
        return (*super().get_list_display(request), "export_state", "export_attempts", "exported_at")


@admin.register(CustomerBinding)
class CustomerBindingAdmin(BindingAdmin):
    local_field = "customer"
    search_fields = ("external_id", "external_code", "customer__email", "customer__name")
