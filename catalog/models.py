"""The site's catalog. Fields have owners: MoySklad owns name/price/article/barcodes (the name is
contested: the newer side wins, see services.CONTESTED_FIELDS); the site owns slug, SEO fields
and images, which no sync ever writes."""
from decimal import Decimal

from django.db import models
from django.utils.translation import gettext_lazy as _


class Category(models.Model):
    name = models.CharField(_("name"), max_length=255)
    parent = models.ForeignKey("self", verbose_name=_("parent"), null=True, blank=True, on_delete=models.SET_NULL,
                               related_name="children")
    path = models.CharField(_("path"), max_length=1024, blank=True,
                            help_text=_("Full folder path, for display and search"))
    archived = models.BooleanField(_("archived"), default=False)
    # Site-owned
    slug = models.SlugField(_("slug"), max_length=255, blank=True)
    seo_title = models.CharField(_("SEO title"), max_length=255, blank=True)
    seo_description = models.TextField(_("SEO description"), blank=True)
    updated_at = models.DateTimeField(_("updated at"), auto_now=True, db_index=True)

    class Meta:
        verbose_name = _("category")
        verbose_name_plural = _("categories")
        ordering = ("path", "name")

    def __str__(self) -> str:
        return self.path or self.name


class Product(models.Model):
    name = models.CharField(_("name"), max_length=255)
    description = models.TextField(_("description"), blank=True)
    category = models.ForeignKey(Category, verbose_name=_("category"), null=True, blank=True,
                                 on_delete=models.SET_NULL, related_name="products")
    archived = models.BooleanField(_("archived"), default=False,
                                   help_text=_("Archived or deleted upstream: unpublished, never deleted here"))
    vat = models.PositiveSmallIntegerField(_("VAT"), null=True, blank=True)
    # The product's own sale price (null: it has none). Its variants without a price of their own
    # sell at it.
    price = models.DecimalField(_("price"), max_digits=14, decimal_places=2, null=True, blank=True)
    # When the name was last edited on the site (admin); MoySklad wins only if its edit is newer.
    name_edited_at = models.DateTimeField(_("name edited at"), null=True, blank=True)
    # Site-owned: sync never writes these.
    slug = models.SlugField(_("slug"), max_length=255, blank=True, db_index=False)
    seo_title = models.CharField(_("SEO title"), max_length=255, blank=True)
    seo_description = models.TextField(_("SEO description"), blank=True)
    created_at = models.DateTimeField(_("created at"), auto_now_add=True)
    updated_at = models.DateTimeField(_("updated at"), auto_now=True)

    class Meta:
        verbose_name = _("product")
        verbose_name_plural = _("products")
        ordering = ("name",)
        # Every index is paid for on each row a catalog import writes, so no two serve one
        # query: (updated_at, id) also answers updated_at alone, and text columns get a plain
        # index only (Django's extra `_like` one serves LIKE 'x%', which nothing here asks).
        indexes = [models.Index(fields=["updated_at", "id"]),
                   models.Index(fields=["slug"], name="product_slug")]

    def __str__(self) -> str:
        return self.name


class ProductImage(models.Model):
    """Site-owned images: uploaded or linked by managers, never overwritten by sync."""

    product = models.ForeignKey(Product, verbose_name=_("product"), on_delete=models.CASCADE, related_name="images")
    url = models.URLField(_("URL"), max_length=1024)
    alt = models.CharField(_("alt"), max_length=255, blank=True)
    position = models.PositiveSmallIntegerField(_("position"), default=0)

    class Meta:
        verbose_name = _("product image")
        verbose_name_plural = _("product images")
        ordering = ("position", "id")


class Offer(models.Model):
    """A sellable unit: a product without variants, or one variant. Holds the SKU every channel
    and supplier mapping points at."""

    product = models.ForeignKey(Product, verbose_name=_("product"), on_delete=models.CASCADE, related_name="offers")
    sku = models.CharField(_("SKU"), max_length=255)
    name = models.CharField(_("name"), max_length=512)
    is_variant = models.BooleanField(_("is variant"), default=False)
    characteristics = models.JSONField(_("characteristics"), default=dict, blank=True)
    article = models.CharField(_("article"), max_length=255, blank=True)
    code = models.CharField(_("code"), max_length=255, blank=True)
    # Null: no sale price of the configured type - listed, stock published, but not orderable.
    price = models.DecimalField(_("price"), max_digits=14, decimal_places=2, null=True, blank=True)
    # A variant with no price of its own sells at its product's price and follows its changes.
    price_from_product = models.BooleanField(_("price from product"), default=False)
    currency = models.CharField(_("currency"), max_length=3, default="RUB")
    archived = models.BooleanField(_("archived"), default=False)
    updated_at = models.DateTimeField(_("updated at"), auto_now=True, db_index=True)

    class Meta:
        verbose_name = _("offer")
        verbose_name_plural = _("offers")
        ordering = ("sku",)
        # A constraint rather than unique=True: the same unique index, without the `_like` twin.
        constraints = [models.UniqueConstraint(fields=["sku"], name="offer_sku_unique")]

    def __str__(self) -> str:
        return f"{self.sku} {self.name}"

    @property
    def price_display(self) -> str:
        return "" if self.price is None else f"{self.price.quantize(Decimal('0.01'))}"


class Barcode(models.Model):
    # offer: no index of its own, barcode_unique_per_offer (offer, value) serves lookups by offer
    offer = models.ForeignKey(Offer, verbose_name=_("offer"), on_delete=models.CASCADE, related_name="barcodes",
                              db_index=False)
    kind = models.CharField(_("kind"), max_length=16, default="ean13")
    value = models.CharField(_("value"), max_length=64)

    class Meta:
        verbose_name = _("barcode")
        verbose_name_plural = _("barcodes")
        constraints = [models.UniqueConstraint(fields=["offer", "value"], name="barcode_unique_per_offer")]
        indexes = [models.Index(fields=["value"], name="barcode_value")]

    def __str__(self) -> str:
        return self.value


class FieldChange(models.Model):
    """History of changes to contested fields: who changed what, from what, to what, when."""

    class Source(models.TextChoices):
        MOYSKLAD = "moysklad", _("MoySklad")
        SITE = "site", _("Site")

    product = models.ForeignKey(Product, verbose_name=_("product"), on_delete=models.CASCADE,
                                related_name="field_changes")
    field = models.CharField(_("field"), max_length=64)
    old_value = models.TextField(_("old value"), blank=True)
    new_value = models.TextField(_("new value"), blank=True)
    source = models.CharField(_("source"), max_length=16, choices=Source.choices)
    accepted = models.BooleanField(_("accepted"), default=True,
                                   help_text=_("False: the other side's edit was newer, kept it"))
    changed_at = models.DateTimeField(_("changed at"), help_text=_("When the edit was made on its side"))
    recorded_at = models.DateTimeField(_("recorded at"), auto_now_add=True)

    class Meta:
        verbose_name = _("field change")
        verbose_name_plural = _("field changes")
        ordering = ("-recorded_at", "-id")


class ExternalSku(models.Model):
    """Another system's SKU as a stock source sends it (`source`: `supplier:acme`, `1c`), and the
    offer of ours it means. A row with no offer is an unmapped SKU: listed for a manager (with how
    often it came), never guessed. A manager sets `offer` to map it; matching by equal SKU or a
    barcode of ours needs no row (catalog.services.external_skus_match)."""

    source = models.CharField(_("source"), max_length=64, db_index=True)
    sku = models.CharField(_("SKU"), max_length=255)
    offer = models.ForeignKey(Offer, verbose_name=_("offer"), null=True, blank=True, on_delete=models.SET_NULL,
                              related_name="external_skus",
                              help_text=_("Our offer this SKU means (set by a manager); empty: unmapped"))
    name = models.CharField(_("name"), max_length=255, blank=True,
                            help_text=_("The name the source gave, to help map it"))
    seen_count = models.PositiveIntegerField(_("seen count"), default=0,
                                             help_text=_("Reads in which this SKU came unmatched"))
    first_seen_at = models.DateTimeField(_("first seen at"), null=True, blank=True)
    last_seen_at = models.DateTimeField(_("last seen at"), null=True, blank=True)

    class Meta:
        verbose_name_plural = _("external SKUs")
        verbose_name = _("external SKU")
        constraints = [models.UniqueConstraint(fields=["source", "sku"], name="external_sku_unique_per_source")]
        indexes = [models.Index(fields=["source", "offer"], name="external_sku_source_offer")]

    def __str__(self) -> str:
        return f"{self.source}: {self.sku}"
