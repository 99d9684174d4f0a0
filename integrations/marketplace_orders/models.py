"""Marketplace order state: the status mapping tables, the outbox of actions, returns."""
from __future__ import annotations

from django.db import models

from orders.models import OrderSource, OrderStatus

MARKETPLACE_SOURCES = [(OrderSource.OZON.value, OrderSource.OZON.label), (OrderSource.WB.value, OrderSource.WB.label),
                       (OrderSource.YM.value, OrderSource.YM.label)]


class ChannelOrder(models.Model):
    """What a marketplace order's actions and returns need beyond our order model: the channel's
    other ids (WB `rid` = `srid` in claims, the Ozon order number) and its data (Ozon SKUs per
    offer, WB warehouse and cargo type, YM campaign)."""

    order = models.OneToOneField("orders.Order", on_delete=models.CASCADE, related_name="channel_order")
    source = models.CharField(max_length=8, choices=MARKETPLACE_SOURCES)
    alt_id = models.CharField(max_length=128, blank=True, db_index=True,
                              help_text="Another id the channel uses for this order (WB rid)")
    data = models.JSONField(default=dict, blank=True)
    pulled_at = models.DateTimeField(auto_now=True)

    def __str__(self) -> str:
        return f"{self.source}:{self.order_id}"


class StatusMapping(models.Model):
    """A marketplace's own status -> our unified status. Keys:

    * Ozon: the posting `status` (`awaiting_packaging`, `delivering`, …);
    * Wildberries: `wb:<wbStatus>` (the marketplace side, checked first) and
      `supplier:<supplierStatus>` (the seller side: `new`, `confirm`, `complete`, `cancel`);
    * Yandex Market: `STATUS/SUBSTATUS` (checked first) and `STATUS`.

    An empty status means "this marketplace status does not move ours". Seeded with defaults;
    managers edit rows in the admin. A key we have no row for is added (empty) the first time an
    order shows it, so the manager sees it listed."""

    source = models.CharField(max_length=8, choices=MARKETPLACE_SOURCES)
    marketplace_status = models.CharField(max_length=64)
    status = models.CharField(max_length=20, blank=True, choices=OrderStatus.choices)
    seeded = models.BooleanField(default=True, help_text="A default; False once a manager edited it")
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ("source", "marketplace_status")
        constraints = [models.UniqueConstraint(fields=["source", "marketplace_status"], name="mpstatusmap_unique")]
        verbose_name = "status mapping (marketplace → ours)"
        verbose_name_plural = "status mappings (marketplace → ours)"

    def __str__(self) -> str:
        return f"{self.source}:{self.marketplace_status} → {self.status or '(no change)'}"


class Action(models.TextChoices):
    NONE = "", "(nothing)"
    OZON_SHIP = "ozon_ship", "Ozon: pack and ship (v4/posting/fbs/ship)"
    OZON_CANCEL = "ozon_cancel", "Ozon: cancel (v2/posting/fbs/cancel)"
    WB_SUPPLY_ADD = "wb_supply_add", "Wildberries: add to the open supply (confirm)"
    WB_DELIVER = "wb_deliver", "Wildberries: add to the supply and hand it over (deliver)"
    WB_CANCEL = "wb_cancel", "Wildberries: cancel the assembly task"
    YM_READY_TO_SHIP = "ym_ready_to_ship", "Yandex Market: PROCESSING/READY_TO_SHIP"
    YM_CANCEL = "ym_cancel", "Yandex Market: CANCELLED/SHOP_FAILED"
    MOYSKLAD_STATE = "moysklad_state", "MoySklad: move the customerorder to the mapped state"


class ActionMapping(models.Model):
    """Our unified status -> what the marketplace is told when one of its orders reaches it by a
    route other than the marketplace itself (MoySklad, the admin)."""

    source = models.CharField(max_length=8, choices=MARKETPLACE_SOURCES)
    status = models.CharField(max_length=20, choices=OrderStatus.choices)
    action = models.CharField(max_length=32, choices=Action.choices, blank=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ("source", "status")
        constraints = [models.UniqueConstraint(fields=["source", "status"], name="mpactionmap_unique")]
        verbose_name = "action mapping (ours → marketplace)"
        verbose_name_plural = "action mappings (ours → marketplace)"

    def __str__(self) -> str:
        return f"{self.source}: {self.status} → {self.action or '(nothing)'}"


class ActionState(models.TextChoices):
    PENDING = "pending", "Waiting"
    DONE = "done", "Done"
    FAILED = "failed", "Failed (shown on the order)"
    REFUSED = "refused", "Refused (illegal transition)"
    SKIPPED = "skipped", "Nothing to do"


class MarketplaceAction(models.Model):
    """The outbox: one row per (status change, target). Planned in the same pass that sees the
    change; run under a lease so two workers never run one; `done` only after the marketplace
    confirmed it (or a read-back shows it already applied, after a lost answer)."""

    order = models.ForeignKey("orders.Order", on_delete=models.CASCADE, related_name="marketplace_actions")
    change = models.ForeignKey("orders.OrderStatusChange", on_delete=models.CASCADE, related_name="+")
    target = models.CharField(max_length=16, default="marketplace", help_text="marketplace or moysklad")
    source = models.CharField(max_length=8, choices=MARKETPLACE_SOURCES)
    action = models.CharField(max_length=32, choices=Action.choices, blank=True)
    to_status = models.CharField(max_length=20, choices=OrderStatus.choices)
    state = models.CharField(max_length=16, choices=ActionState.choices, default=ActionState.PENDING, db_index=True)
    attempts = models.PositiveIntegerField(default=0)
    attempted_at = models.DateTimeField(null=True, blank=True,
                                        help_text="A request was sent (answer maybe lost): read back before resending")
    next_attempt_at = models.DateTimeField(null=True, blank=True)
    error = models.TextField(blank=True)
    result = models.JSONField(default=dict, blank=True)
    lease_owner = models.CharField(max_length=128, blank=True)
    lease_until = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    done_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ("-id",)
        constraints = [models.UniqueConstraint(fields=["change", "target"], name="mpaction_once_per_change")]
        indexes = [models.Index(fields=["state", "next_attempt_at"], name="mpaction_outbox")]

    def __str__(self) -> str:
        return f"{self.get_action_display() or 'nothing'} ({self.state})"


class WbSupply(models.Model):
    """A Wildberries supply we opened (per seller warehouse and cargo type): tasks are added to
    the open one, `deliver` closes it. Its name is ours and deterministic, so a create whose
    answer was lost is found again by name instead of opening a second supply."""

    name = models.CharField(max_length=128, unique=True)
    supply_id = models.CharField(max_length=64, blank=True)
    warehouse_id = models.CharField(max_length=32, blank=True)
    cargo_type = models.IntegerField(default=1)
    done = models.BooleanField(default=False)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ("-id",)

    def __str__(self) -> str:
        return self.supply_id or self.name


class MarketplaceReturn(models.Model):
    """One return (or non-purchase, or buyer claim) as its marketplace reports it, recorded once
    by (source, return_id). Units go back once (`restored_at`, claimed under a row lock), only
    when the marketplace says they reached us, and only for an order we know."""

    class Restore(models.TextChoices):
        WAITING = "waiting", "Not received yet"
        RESTORED = "restored", "Restored"
        FLAGGED = "flagged", "Needs a manager (unknown order or SKU)"
        NOTHING = "nothing", "Nothing to restore"

    source = models.CharField(max_length=8, choices=MARKETPLACE_SOURCES)
    return_id = models.CharField(max_length=128)
    order = models.ForeignKey("orders.Order", null=True, blank=True, on_delete=models.SET_NULL,
                              related_name="marketplace_returns")
    source_order_id = models.CharField(max_length=128, blank=True)
    kind = models.CharField(max_length=64, blank=True, help_text="The marketplace's return type")
    marketplace_status = models.CharField(max_length=64, blank=True)
    received = models.BooleanField(default=False, help_text="The units are back with us (per the marketplace)")
    lines = models.JSONField(default=list, help_text='[{"sku", "quantity"}]')
    amount = models.DecimalField(max_digits=14, decimal_places=2, null=True, blank=True)
    reason = models.CharField(max_length=255, blank=True)
    returned_at = models.DateTimeField(null=True, blank=True)
    flagged = models.BooleanField(default=False, db_index=True)
    flag_reason = models.CharField(max_length=255, blank=True)
    restore = models.CharField(max_length=16, choices=Restore.choices, default=Restore.WAITING)
    restored_at = models.DateTimeField(null=True, blank=True)
    restored_via = models.CharField(max_length=32, blank=True, help_text="moysklad salesreturn or stock")
    restore_error = models.TextField(blank=True)
    salesreturn_id = models.CharField(max_length=64, blank=True)
    notified_at = models.DateTimeField(null=True, blank=True, help_text="The manager was told in Telegram")
    raw = models.JSONField(default=dict, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ("-id",)
        constraints = [models.UniqueConstraint(fields=["source", "return_id"], name="mpreturn_once")]
        indexes = [models.Index(fields=["restore", "received"], name="mpreturn_restore_queue")]

    def __str__(self) -> str:
        return f"{self.source} return {self.return_id}"

    @property
    def sync_code(self) -> str:
        """Our stable key upstream (the salesreturn's externalCode)."""
        return f"syncsite-return-{self.source}-{self.return_id}"[:255]

