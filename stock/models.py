"""Warehouses, stock levels, the holds open orders keep on them, and the log of every change.

Stock figures come from the upstream that owns each warehouse (MoySklad stores, supplier feeds,
1C). Every write goes through `stock.services` (see there): it keeps

    available = max(stock − reserve − active holds on (offer, warehouse), 0)

and logs one `StockChange` per real change."""
from decimal import Decimal

from django.db import models
from django.utils.translation import gettext_lazy as _
from django.db.models import Q


class Warehouse(models.Model):
    name = models.CharField(_("name"), max_length=255)
    code = models.CharField(_("code"), max_length=64, unique=True,
                            help_text=_("Stable code shown in the storefront API"))
    source = models.CharField(_("source"), max_length=64, default="moysklad", db_index=True,
                              help_text=_("Who owns this warehouse's figures: moysklad, supplier:<slug>, 1c, …"))
    ships_orders = models.BooleanField(
        _("ships orders"), default=False,
        help_text=_("Site orders reserve here first when it holds the whole order (MoySklad's "
                    "shipping store: MOYSKLAD_STORE_ID, else the account's first store)"))
    archived = models.BooleanField(_("archived"), default=False)
    updated_at = models.DateTimeField(_("updated at"), auto_now=True)

    class Meta:
        verbose_name = _("warehouse")
        verbose_name_plural = _("warehouses")
        ordering = ("name",)

    def __str__(self) -> str:
        return self.name


class StockLevel(models.Model):
    """Stock of one offer in one warehouse. `available` = stock − reserve − active holds, never
    below zero (written only by stock.services)."""

    # No index of its own on offer: the unique (offer, warehouse) index serves lookups by offer.
    offer = models.ForeignKey("catalog.Offer", verbose_name=_("offer"), on_delete=models.CASCADE,
                              related_name="stock_levels",
                              db_index=False)
    warehouse = models.ForeignKey(Warehouse, verbose_name=_("warehouse"), on_delete=models.CASCADE,
                                  related_name="stock_levels")
    stock = models.DecimalField(_("stock"), max_digits=14, decimal_places=3, default=Decimal(0))
    reserve = models.DecimalField(_("reserve"), max_digits=14, decimal_places=3, default=Decimal(0))
    available = models.DecimalField(_("available"), max_digits=14, decimal_places=3, default=Decimal(0))
    source = models.CharField(_("source"), max_length=64, default="moysklad")
    checked_at = models.DateTimeField(_("checked at"), null=True, blank=True,
                                      help_text=_("When the figure was last read upstream"))
    updated_at = models.DateTimeField(_("updated at"), auto_now=True, db_index=True)

    class Meta:
        verbose_name = _("stock level")
        verbose_name_plural = _("stock levels")
        constraints = [models.UniqueConstraint(fields=["offer", "warehouse"], name="stock_unique_offer_warehouse")]

    def __str__(self) -> str:
        return f"{self.offer_id}@{self.warehouse_id}: {self.available}"


class StockHold(models.Model):
    """Units an open order holds in one warehouse, subtracted from that level's `available`.

    `ref` names what holds them (an order line: `orderline:<id>`) as plain text, so stock never
    depends on orders. Lifecycle: placed when the order is created; when the upstream that owns
    the warehouse takes the order with its own reserve (MoySklad), the hold is *handed over* but
    still subtracted, until a read of that upstream started after the hand-over is applied to
    the level and its reserve counts the units: the hold is then released, so they are never
    counted twice and never briefly uncounted. An upstream that recalculates its reports a little
    after a document changes (MoySklad) hands over with `counted_from` a little later: a read
    started in between releases the hold only if its reserve rose by the held units. A hold that
    is never handed over ends when the order ships or is cancelled."""

    offer = models.ForeignKey("catalog.Offer", verbose_name=_("offer"), on_delete=models.CASCADE,
                              related_name="stock_holds")
    warehouse = models.ForeignKey(Warehouse, verbose_name=_("warehouse"), on_delete=models.CASCADE,
                                  related_name="stock_holds")
    quantity = models.DecimalField(_("quantity"), max_digits=14, decimal_places=3)
    ref = models.CharField(_("ref"), max_length=64, db_index=True,
                           help_text=_("What holds the units, e.g. orderline:42"))
    source = models.CharField(_("source"), max_length=64, blank=True,
                              help_text=_("Where the order came from: site, ozon, …"))
    created_at = models.DateTimeField(_("created at"), auto_now_add=True)
    handed_over_at = models.DateTimeField(_("handed over at"), null=True, blank=True,
                                          help_text=_("The warehouse's upstream reserves the units from then on"))
    handed_over_to = models.CharField(_("handed over to"), max_length=64, blank=True)
    counted_from = models.DateTimeField(
        _("counted from"), null=True, blank=True,
        help_text=_("A read of the upstream started after this surely counts the units in "
                    "its reserve (one started earlier only if its reserve shows them)"))
    released_at = models.DateTimeField(_("released at"), null=True, blank=True)
    release_reason = models.CharField(_("release reason"), max_length=32, blank=True,
                                      help_text=_("synced, cancelled, shipped"))

    class Meta:
        verbose_name = _("stock hold")
        verbose_name_plural = _("stock holds")
        indexes = [models.Index(fields=["warehouse", "offer"], condition=Q(released_at__isnull=True),
                                name="stockhold_active")]

    def __str__(self) -> str:
        return f"{self.ref}: {self.offer_id}@{self.warehouse_id} × {self.quantity}"

    @property
    def active(self) -> bool:
        return self.released_at is None


class StockChange(models.Model):
    """One real change of a stock level: what it was, what it became, who said so and how."""

    # A full stock read may log a few hundred thousand rows at once, so the log carries no more
    # indexes than its reads need ((offer, at): "changes of one offer"; `at`: "changes per hour")
    # and no database foreign-key checks (PostgreSQL runs one per row and column at commit; the
    # rows come only from stock.services, and deleting an offer still removes its log through
    # Django's CASCADE).
    offer = models.ForeignKey("catalog.Offer", verbose_name=_("offer"), on_delete=models.CASCADE,
                              related_name="stock_changes",
                              db_index=False, db_constraint=False)
    warehouse = models.ForeignKey(Warehouse, verbose_name=_("warehouse"), on_delete=models.CASCADE,
                                  related_name="stock_changes",
                                  db_index=False, db_constraint=False)
    source = models.CharField(_("source"), max_length=64, help_text=_("moysklad, supplier:<slug>, 1c, site, ozon, …"))
    via = models.CharField(_("via"), max_length=16,
                           help_text=_("sync, full, webhook, live, exchange, order, cancel, …"))
    previous_stock = models.DecimalField(_("previous stock"), max_digits=14, decimal_places=3)
    new_stock = models.DecimalField(_("new stock"), max_digits=14, decimal_places=3)
    previous_reserve = models.DecimalField(_("previous reserve"), max_digits=14, decimal_places=3)
    new_reserve = models.DecimalField(_("new reserve"), max_digits=14, decimal_places=3)
    previous_available = models.DecimalField(_("previous available"), max_digits=14, decimal_places=3)
    new_available = models.DecimalField(_("new available"), max_digits=14, decimal_places=3)
    at = models.DateTimeField(_("at"), db_index=True)

    class Meta:
        verbose_name = _("stock change")
        verbose_name_plural = _("stock changes")
        ordering = ("-at", "-id")
        indexes = [models.Index(fields=["offer", "-at"], name="stockchange_offer_at")]

    def __str__(self) -> str:
        return f"{self.offer_id}@{self.warehouse_id}: {self.previous_available} → {self.new_available}"


class BackInStockSubscription(models.Model):
    """A customer waiting for an offer. When the offer's total available goes from 0 to more than
    0 (by any route), each waiting subscriber is e-mailed once (`notified_at` is claimed first);
    the unsubscribe link carries `token`. Subscribing again after the e-mail waits again."""

    offer = models.ForeignKey("catalog.Offer", on_delete=models.CASCADE, related_name="back_in_stock")
    email = models.EmailField(max_length=254)
    token = models.CharField(max_length=64, unique=True)
    created_at = models.DateTimeField(auto_now_add=True)
    notified_at = models.DateTimeField(null=True, blank=True)
    unsubscribed_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["offer", "email"], name="backinstock_offer_email")]
        indexes = [models.Index(fields=["offer"], name="backinstock_waiting",
                                condition=Q(notified_at__isnull=True, unsubscribed_at__isnull=True))]

    def __str__(self) -> str:
        return f"{self.email} waits for {self.offer_id}"
