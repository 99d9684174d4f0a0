"""1C in the admin: webhook pushes (re-queue action), exchange sessions and their uploads (what
each import did or why it failed), the goods and warehouses 1C described. Unmapped 1C SKUs are
in catalog's external SKU list (source "1c")."""
from django.contrib import admin, messages
from django.db import transaction

from .models import ExchangeSession, ExchangeUpload, OnecItem, OnecWarehouse, StockPush


@admin.register(StockPush)
class StockPushAdmin(admin.ModelAdmin):
    list_display = ("id", "received_at", "item_count", "status", "attempts", "processed_at")
    list_filter = ("status",)
    readonly_fields = ("items", "item_count", "status", "attempts", "counts", "error", "received_at", "claimed_at",
                       "processed_at")
    actions = ["requeue"]

    def get_queryset(self, request):
        qs = super().get_queryset(request)
        return qs.defer("items") if request.resolver_match and request.resolver_match.url_name.endswith(
            "changelist") else qs

    def has_add_permission(self, request):
        return False

    @admin.action(description="Apply again")
    def requeue(self, request, queryset):
        from .pushes import push_signal

        ids = list(queryset.exclude(status=StockPush.Status.PROCESSING).values_list("pk", flat=True))
        StockPush.objects.filter(pk__in=ids).update(status=StockPush.Status.RECEIVED, attempts=0, error="")
        for push_id in ids:
            transaction.on_commit(lambda push_id=push_id: push_signal(push_id), robust=True)
        self.message_user(request, f"{len(ids)} pushes queued", messages.SUCCESS)


class UploadInline(admin.TabularInline):
    model = ExchangeUpload
    extra = 0
    can_delete = False
    fields = ("filename", "size", "chunks", "state", "counts", "error", "finished_at")
    readonly_fields = fields


@admin.register(ExchangeSession)
class ExchangeSessionAdmin(admin.ModelAdmin):
    list_display = ("id", "exchange_type", "remote_addr", "created_at", "seen_at")
    readonly_fields = ("exchange_type", "remote_addr", "created_at", "seen_at")
    exclude = ("cookie_digest",)
    inlines = [UploadInline]

    def has_add_permission(self, request):
        return False


@admin.register(ExchangeUpload)
class ExchangeUploadAdmin(admin.ModelAdmin):
    list_display = ("id", "filename", "session", "size", "state", "created_at", "finished_at")
    list_filter = ("state",)
    readonly_fields = ("session", "filename", "size", "chunks", "state", "counts", "error", "created_at", "queued_at",
                       "started_at", "heartbeat_at", "finished_at")

    def has_add_permission(self, request):
        return False


@admin.register(OnecItem)
class OnecItemAdmin(admin.ModelAdmin):
    list_display = ("onec_id", "sku", "barcode", "name", "updated_at")
    search_fields = ("onec_id", "sku", "barcode", "name")


@admin.register(OnecWarehouse)
class OnecWarehouseAdmin(admin.ModelAdmin):
    list_display = ("onec_id", "name", "updated_at")
