"""Dropshipping suppliers: who they are, how to read them, what they sent.

Each supplier's stock lives in our stock levels as the warehouse coded `supplier:{slug}` (so the
storefront, the marketplace channels and the admin need no special case); this app only keeps how
to reach the supplier, which of its SKUs is which offer of ours, and its signed webhook events."""
from __future__ import annotations

from django.core.validators import MinValueValidator, RegexValidator
from django.db import models
from django.utils import timezone

from . import crypto

#: the `api` dialect: paths and field names, each changeable per supplier in the admin
API_DIALECT_DEFAULTS = {
    "stock_path": "stock",          # GET {url}/{stock_path}?page=N&per_page=M[&updated_since=ISO]
    "item_path": "stock/{sku}",     # GET {url}/{item_path} (live check)
    "page_param": "page",
    "per_page_param": "per_page",
    "since_param": "updated_since",
    "items_field": "items",
    "sku_field": "sku",
    "stock_field": "stock",
    "first_page": 1,
}

SLUG = RegexValidator(r"^[a-z0-9][a-z0-9_-]{0,47}$", "lower-case letters, digits, '-' and '_', up to 48")


def api_dialect_default() -> dict:
    return dict(API_DIALECT_DEFAULTS)


class Supplier(models.Model):
    class Kind(models.TextChoices):
        API = "api", "API (JSON)"
        CSV = "csv", "CSV price list"
        YML = "yml", "YML feed"

    class YmlSku(models.TextChoices):
        VENDOR_CODE = "vendorCode", "vendorCode"
        OFFER_ID = "id", "offer id attribute"

    slug = models.CharField(max_length=48, unique=True, validators=[SLUG],
                            help_text="Stable; the warehouse code is supplier:<slug>")
    name = models.CharField(max_length=255, blank=True)
    active = models.BooleanField(default=True)
    kind = models.CharField(max_length=8, choices=Kind.choices, default=Kind.API)
    url = models.URLField(max_length=1024, help_text="API base URL, or the feed's URL (http or https)")
    token_encrypted = models.TextField(blank=True, editable=False,
                                       help_text="Bearer token, encrypted with a key derived from SECRET_KEY")
    webhook_secret = models.CharField(max_length=255, blank=True,
                                      help_text="Shared secret for signed stock webhooks (empty: webhook off)")
    live_check = models.BooleanField(default=False, help_text="Ask the supplier at add-to-cart when our figure is stale")
    fresh_seconds = models.PositiveIntegerField(
        null=True, blank=True, help_text="A figure older than this is stale (empty: CART_CHECK_STALE_SECONDS)")
    page_size = models.PositiveIntegerField(default=500, validators=[MinValueValidator(1)])
    zero_missing = models.BooleanField(
        default=False, help_text="A complete full read sets offers the supplier no longer lists to 0")
    api_dialect = models.JSONField(default=api_dialect_default, blank=True,
                                   help_text="api kind: paths and field names (missing keys take the defaults)")
    csv_sku_column = models.CharField(max_length=64, default="sku")
    csv_stock_column = models.CharField(max_length=64, default="stock")
    csv_delimiter = models.CharField(max_length=1, blank=True, help_text="; or , (empty: detected)")
    csv_encoding = models.CharField(max_length=16, blank=True,
                                    help_text="utf-8 or cp1251 (empty: UTF-8 with or without BOM, else cp1251)")
    yml_sku_source = models.CharField(max_length=16, choices=YmlSku.choices, default=YmlSku.VENDOR_CODE)
    yml_in_stock_quantity = models.PositiveIntegerField(
        default=1, help_text='Stock for an offer without <count> marked available="true"')
    # bookkeeping
    delta_cursor = models.DateTimeField(null=True, blank=True, help_text="Start of the last successful read")
    last_sync_at = models.DateTimeField(null=True, blank=True)
    last_full_at = models.DateTimeField(null=True, blank=True)
    last_status = models.CharField(max_length=16, blank=True)
    last_message = models.TextField(blank=True)
    last_counts = models.JSONField(default=dict, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ("slug",)

    def __str__(self) -> str:
        return self.name or self.slug

    @property
    def source(self) -> str:
        return f"supplier:{self.slug}"

    @property
    def warehouse_code(self) -> str:
        return self.source

    @property
    def token(self) -> str:
        return crypto.decrypt(self.token_encrypted)

    @token.setter
    def token(self, value: str) -> None:
        self.token_encrypted = crypto.encrypt(value or "")

    @property
    def dialect(self) -> dict:
        given = self.api_dialect if isinstance(self.api_dialect, dict) else {}
        return {**API_DIALECT_DEFAULTS, **{k: v for k, v in given.items() if k in API_DIALECT_DEFAULTS and v != ""}}

    def warehouse(self):
        from stock.services import warehouse_ensure

        return warehouse_ensure(code=self.warehouse_code, name=self.name or self.slug, source=self.source)


class SupplierSku(models.Model):
    """Their SKU -> our offer, as the last read matched it (catalog.services.external_skus_match).
    The live check reads it backwards: which of their SKUs to ask about for our offer."""

    supplier = models.ForeignKey(Supplier, on_delete=models.CASCADE, related_name="skus")
    sku = models.CharField(max_length=255)
    offer = models.ForeignKey("catalog.Offer", on_delete=models.CASCADE, related_name="supplier_skus")
    seen_at = models.DateTimeField(default=timezone.now)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["supplier", "sku"], name="suppliersku_unique")]
        indexes = [models.Index(fields=["supplier", "offer"], name="suppliersku_offer")]

    def __str__(self) -> str:
        return f"{self.supplier_id}:{self.sku} -> {self.offer_id}"


class SupplierEvent(models.Model):
    """One signed stock webhook as received. The signature is unique per supplier: a replay of the
    same signed request inside the time window is refused, so it is applied once."""

    class Status(models.TextChoices):
        RECEIVED = "received", "Received"
        PROCESSING = "processing", "Processing"
        DONE = "done", "Done"
        FAILED = "failed", "Failed"

    supplier = models.ForeignKey(Supplier, on_delete=models.CASCADE, related_name="events")
    signature = models.CharField(max_length=64)
    signed_at = models.DateTimeField()
    payload = models.JSONField(default=dict)
    items = models.PositiveIntegerField(default=0)
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.RECEIVED)
    attempts = models.PositiveIntegerField(default=0)
    error = models.TextField(blank=True)
    counts = models.JSONField(default=dict, blank=True)
    received_at = models.DateTimeField(default=timezone.now, db_index=True)
    processed_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ("-received_at", "-id")
        constraints = [models.UniqueConstraint(fields=["supplier", "signature"], name="supplierevent_unique_signature")]
        indexes = [models.Index(fields=["status", "received_at"], name="supplierevent_sweep")]

    def __str__(self) -> str:
        return f"{self.supplier_id} webhook {self.items} items ({self.status})"
