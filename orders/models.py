"""Orders from every channel (site, Ozon, Wildberries, Yandex Market) in one model.

Where an order's stock is held
------------------------------
Creating an order holds its units at once in ONE warehouse (`stock.services.stock_allocate`: the
shipping store when it holds the whole order, else the store with the most that does), as
`stock.StockHold` rows referring to the order lines (`OrderLine.hold_ref`). Everything that reads
`available` (storefront API, marketplace push) sees the units as gone at once, and a stock sync
keeps them subtracted (available = stock − reserve − holds). The export names that store, with
`reserve` on each position, and hands the holds over: they stay subtracted until a MoySklad stock
read that started after the hand-over (whose reserve now counts the units) releases them.
Cancelling before the export releases the holds and the units are available again at once.
"""
from __future__ import annotations

import uuid
from decimal import Decimal

from django.db import models
from django.db.models import Q


class OrderStatus(models.TextChoices):
    PENDING = "pending", "Pending"
    CONFIRMED = "confirmed", "Confirmed"
    PROCESSING = "processing", "Processing"
    PARTIALLY_SHIPPED = "partially_shipped", "Partially shipped"
    SHIPPED = "shipped", "Shipped"
    COMPLETED = "completed", "Completed"
    CANCELLED = "cancelled", "Cancelled"
    RETURNED = "returned", "Returned"


class OrderSource(models.TextChoices):
    SITE = "site", "Site"
    OZON = "ozon", "Ozon"
    WB = "wb", "Wildberries"
    YM = "ym", "Yandex Market"


class ExportState(models.TextChoices):
    PENDING = "pending", "Waiting to export"
    EXPORTED = "exported", "In MoySklad"
    FAILED = "failed", "Failed (needs a manager)"


class Customer(models.Model):
    """Whoever placed the order. `uid` is our stable key upstream (the counterparty's externalCode
    and syncId), so a customer is matched to one counterparty however often they order."""

    uid = models.UUIDField(default=uuid.uuid4, unique=True, editable=False)
    name = models.CharField(max_length=255)
    email = models.CharField(max_length=254, blank=True, db_index=True)
    phone = models.CharField(max_length=64, blank=True)
    phone_digits = models.CharField(max_length=32, blank=True, db_index=True,
                                    help_text="Phone with everything but digits removed, for matching")
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ("-id",)

    def __str__(self) -> str:
        return f"{self.name} <{self.email or self.phone}>"


class Order(models.Model):
    uid = models.UUIDField(default=uuid.uuid4, unique=True, editable=False,
                           help_text="Public id; MoySklad externalCode and syncId")
    number = models.CharField(max_length=32, unique=True, null=True, blank=True)
    source = models.CharField(max_length=8, choices=OrderSource.choices, default=OrderSource.SITE, db_index=True)
    source_order_id = models.CharField(max_length=128, help_text="The order's id in its source channel")
    status = models.CharField(max_length=20, choices=OrderStatus.choices, default=OrderStatus.PENDING, db_index=True)
    status_changed_at = models.DateTimeField(null=True, blank=True)
    customer = models.ForeignKey(Customer, on_delete=models.PROTECT, related_name="orders")
    # The contacts this order was placed with. Matching links orders to one `Customer`, but another
    # order (anyone can type a phone number) never changes these: the status e-mails, the API and
    # the admin use them, so an order's details go only where its own customer asked.
    customer_name = models.CharField("name", max_length=255, blank=True)
    customer_email = models.CharField("e-mail", max_length=254, blank=True)
    customer_phone = models.CharField("phone", max_length=64, blank=True)
    currency = models.CharField(max_length=3, default="RUB")
    total = models.DecimalField(max_digits=14, decimal_places=2, default=Decimal("0.00"))
    shipping_method = models.CharField(max_length=64, blank=True)
    shipping_address = models.TextField(blank=True)
    comment = models.TextField(blank=True)
    idempotency_key = models.CharField(max_length=255, null=True, blank=True, unique=True)
    request_hash = models.CharField(max_length=64, blank=True, help_text="Hash of the creating request body")
    # Export to MoySklad: the outbox is the order's MoySklad binding (integrations.OrderBinding,
    # made with the order in one transaction): its export state, attempts, error and lease.
    # Marketplace orders: what the channel itself says (its raw status, when it placed and last
    # changed the order) and whether a line needs a manager (a SKU we do not know).
    placed_at = models.DateTimeField(null=True, blank=True,
                                     help_text="When the channel says the order was placed (UTC)")
    source_status = models.CharField(max_length=64, blank=True,
                                     help_text="The channel's own status (Ozon status, WB supplierStatus/wbStatus, "
                                               "YM status/substatus)")
    source_updated_at = models.DateTimeField(null=True, blank=True,
                                             help_text="The channel's last change applied to this order")
    flagged = models.BooleanField(default=False, db_index=True,
                                  help_text="A line names a SKU we do not know: a manager must look")
    created_at = models.DateTimeField(auto_now_add=True, db_index=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ("-id",)
        constraints = [
            models.UniqueConstraint(fields=["source", "source_order_id"], name="order_unique_source_id"),
        ]
        indexes = [models.Index(fields=["updated_at", "id"], name="order_changed_feed")]

    def __str__(self) -> str:
        return self.number or f"order {self.pk}"

    @property
    def export_code(self) -> str:
        """Our stable code upstream (MoySklad externalCode): never changes, survives a DB restore
        into another account without colliding with its own numbering."""
        return str(self.uid)


class OrderLine(models.Model):
    order = models.ForeignKey(Order, on_delete=models.CASCADE, related_name="lines")
    position = models.PositiveSmallIntegerField(default=0)
    # Empty only for a flagged line: a marketplace sold a SKU we do not know. The line is kept
    # (the order is real) but holds no stock and goes to no warehouse until a manager sorts it out.
    offer = models.ForeignKey("catalog.Offer", on_delete=models.PROTECT, related_name="order_lines",
                              null=True, blank=True)
    sku = models.CharField(max_length=255)
    external_sku = models.CharField(max_length=255, blank=True,
                                    help_text="The channel's own key for the line (offer id, chrtId, shopSku)")
    flagged = models.BooleanField(default=False, help_text="Unknown SKU: kept for a manager, holds no stock")
    name = models.CharField(max_length=512)
    quantity = models.DecimalField(max_digits=14, decimal_places=3)
    price = models.DecimalField(max_digits=14, decimal_places=2, help_text="Unit price at order time")
    shipped_quantity = models.DecimalField(max_digits=14, decimal_places=3, default=Decimal(0))

    class Meta:
        ordering = ("order", "position", "id")
        constraints = [models.CheckConstraint(condition=Q(quantity__gt=0), name="orderline_quantity_positive"),
                       models.CheckConstraint(condition=Q(offer__isnull=False) | Q(flagged=True),
                                              name="orderline_offer_or_flagged")]

    def __str__(self) -> str:
        return f"{self.sku} × {self.quantity}"

    @property
    def total(self) -> Decimal:
        return (self.price * self.quantity).quantize(Decimal("0.01"))

    @property
    def hold_ref(self) -> str:
        """How this line's stock holds name it (stock never imports orders)."""
        return line_hold_ref(self.pk)


def line_hold_ref(line_id: int) -> str:
    return f"orderline:{line_id}"


class OrderStatusChange(models.Model):
    """Status history. A row exists only for a real change, and the customer's e-mail is owed
    exactly for such rows (`notified_at` is claimed once), so replays never mail anyone."""

    order = models.ForeignKey(Order, on_delete=models.CASCADE, related_name="status_changes")
    from_status = models.CharField(max_length=20, choices=OrderStatus.choices, blank=True)
    to_status = models.CharField(max_length=20, choices=OrderStatus.choices)
    at = models.DateTimeField(db_index=True)
    by = models.CharField(max_length=64, help_text="site, moysklad, moysklad-poll, admin:<user>, ozon, …")
    note = models.CharField(max_length=255, blank=True)
    notify = models.BooleanField(default=False, help_text="The customer is owed an e-mail for this change")
    notified_at = models.DateTimeField(null=True, blank=True)
    recorded_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        # The order in which we recorded the changes. `at` is the upstream document's moment,
        # which a manager can edit (a MoySklad demand.moment set in the past): sorting by it
        # would reorder the history behind our own records.
        ordering = ("order", "id")
        indexes = [models.Index(fields=["notify", "notified_at"], name="statuschange_mail_outbox")]

    def __str__(self) -> str:
        return f"{self.from_status or '∅'} → {self.to_status}"
