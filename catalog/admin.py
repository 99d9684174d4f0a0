"""The catalog in the managers' back office.

Field ownership decides what is editable (see catalog/models.py):
- MoySklad-owned (price, article, code, barcodes, archived, category, vat): read-only; an edit here
  would be overwritten by the next sync.
- Site-owned (slug, SEO fields, images): editable; no sync ever writes them.
- Contested (name, description): editable, but saved through
  `catalog.services.product_contested_set_by_site`, which records a FieldChange and stamps the edit
  so it wins over older MoySklad data.

The admin is an edge, so it may show integration state (bindings, the MoySklad link) beside the
catalog rows; the catalog's own models, services and selectors never import integrations.
"""
from __future__ import annotations

from typing import Any

from django import forms
from django.contrib import admin, messages
from django.db import models
from django.db.models import Count, DecimalField, Prefetch, Q, QuerySet, Sum
from django.db.models.functions import Coalesce
from django.http import HttpRequest
from django.urls import reverse
from django.utils.translation import gettext, gettext_lazy as _
from django.utils.html import format_html, format_html_join

from integrations.models import CategoryBinding, OfferBinding, ProductBinding, System
from integrations.moysklad.constants import UI_PRODUCT_URL
from stock.models import StockLevel
from syncsite.admin_tools import ReadOnlyAdminMixin, ReadOnlyTabularInline, admin_link, short

from .models import Barcode, Category, ExternalSku, FieldChange, Offer, Product, ProductImage
from .services import CONTESTED_FIELDS, product_contested_set_by_site


def _normalise_text(value: str | None) -> str:
    """Browsers submit textareas with CRLF; MoySklad sends LF. Without this, saving a product whose
    description was never touched would count as a site edit and pin it against MoySklad."""
    return (value or "").replace("\r\n", "\n").replace("\r", "\n").strip()


def moysklad_url(external_id: str) -> str:
    # MoySklad's web UI addresses a good by its own UI uuid, which differs from the API id we store
    # in ProductBinding.external_id; the API does not expose the UI one. The edit page given the
    # API id is the closest link we can build (it opens the good for most accounts; if it does
    # not, search MoySklad by the SKU shown here).
    return UI_PRODUCT_URL.format(id=external_id)


def stock_summary(levels: list[StockLevel]) -> str:
    """One line such as "Main: 5 · Shop: 3" from prefetched stock rows (archived warehouses marked)."""
    if not levels:
        return gettext("no stock rows")
    return format_html_join(
        " · ", "{}{}: {}",
        ((lv.warehouse.name, " (archived)" if lv.warehouse.archived else "", _qty(lv.available)) for lv in levels))


def _qty(value: Any) -> str:
    return f"{value.normalize():f}" if value is not None else "—"


def _stock_prefetch() -> Prefetch:
    return Prefetch("stock_levels", queryset=StockLevel.objects.select_related("warehouse")
                    .order_by("warehouse__name", "warehouse__code"))


# ------------------------------------------------------------------------------------------------
# Inlines
# ------------------------------------------------------------------------------------------------
class ProductImageInline(admin.TabularInline):
    """Site-owned: managers add, reorder and remove images freely."""

    model = ProductImage
    extra = 0
    formfield_overrides = {models.URLField: {"assume_scheme": "https"}}
    fields = ("position", "url", "alt", "preview")
    readonly_fields = ("preview",)

    @admin.display(description=_("preview"))
    def preview(self, image: ProductImage) -> str:
        if not image.url:
            return ""
        return format_html('<img src="{}" alt="{}" style="max-height:60px;max-width:120px">', image.url, image.alt)


class OfferInline(ReadOnlyTabularInline):
    model = Offer
    fields = ("sku_link", "name", "price", "archived", "stock")
    readonly_fields = fields

    def get_queryset(self, request: HttpRequest) -> QuerySet[Offer]:
        return super().get_queryset(request).prefetch_related(_stock_prefetch())

    @admin.display(description=_("SKU"))
    def sku_link(self, offer: Offer) -> str:
        return admin_link(offer, offer.sku)

    @admin.display(description=_("available per warehouse"))
    def stock(self, offer: Offer) -> str:
        return stock_summary(list(offer.stock_levels.all()))


class ProductBindingInline(ReadOnlyTabularInline):
    model = ProductBinding
    fields = ("system", "external_id", "external_code", "external_updated_at", "synced_at", "link")
    readonly_fields = fields

    @admin.display(description=_("open upstream"))
    def link(self, binding: ProductBinding) -> str:
        if binding.system != System.MOYSKLAD:
            return "—"
        return format_html('<a href="{}" target="_blank" rel="noopener">MoySklad ↗</a>', moysklad_url(binding.external_id))


class FieldChangeInline(ReadOnlyTabularInline):
    """History of name/description: who changed what, and whether it was kept."""

    model = FieldChange
    fields = ("recorded_at", "field", "source", "accepted", "changed_at", "old", "new")
    readonly_fields = fields
    verbose_name = _("contested field change")
    verbose_name_plural = _("history of contested fields (name, description)")

    @admin.display(description=_("old value"))
    def old(self, change: FieldChange) -> str:
        return short(change.old_value, 120)

    @admin.display(description=_("new value"))
    def new(self, change: FieldChange) -> str:
        return short(change.new_value, 120)


class OfferBindingInline(ReadOnlyTabularInline):
    model = OfferBinding
    fields = ("system", "kind", "external_id", "external_code", "external_updated_at", "synced_at")
    readonly_fields = fields


class BarcodeInline(ReadOnlyTabularInline):
    model = Barcode
    fields = ("kind", "value")
    readonly_fields = fields


class StockLevelInline(ReadOnlyTabularInline):
    model = StockLevel
    fields = ("warehouse", "stock", "reserve", "available", "source", "checked_at", "updated_at")
    readonly_fields = fields

    def get_queryset(self, request: HttpRequest) -> QuerySet[StockLevel]:
        return super().get_queryset(request).select_related("warehouse")


class CategoryBindingInline(ReadOnlyTabularInline):
    model = CategoryBinding
    fields = ("system", "external_id", "external_code", "external_updated_at", "synced_at")
    readonly_fields = fields


# ------------------------------------------------------------------------------------------------
# Product
# ------------------------------------------------------------------------------------------------
class NormalisedTextField(forms.CharField):
    """A textarea value with LF line ends and no outer whitespace (see _normalise_text)."""

    def to_python(self, value: Any) -> str:
        return _normalise_text(super().to_python(value))


class ProductAdminForm(forms.ModelForm):
    description = NormalisedTextField(required=False, widget=forms.Textarea(attrs={"rows": 6}))
    seo_description = NormalisedTextField(required=False, widget=forms.Textarea(attrs={"rows": 3}))

    class Meta:
        model = Product
        fields = ("name", "description", "slug", "seo_title", "seo_description")


@admin.register(Product)
class ProductAdmin(admin.ModelAdmin):
    form = ProductAdminForm
    list_display = ("name", "skus", "category", "archived", "moysklad", "updated_at")
    list_filter = ("archived", ("category", admin.RelatedOnlyFieldListFilter))
    list_select_related = ("category",)
    # Search by name, SKU or barcode (a scanner types the barcode into the search box).
    search_fields = ("name", "offers__sku", "offers__barcodes__value")
    search_help_text = _("Name, SKU or barcode")
    readonly_fields = ("category", "archived", "vat", "moysklad", "name_edited_at", "created_at", "updated_at")
    fieldsets = (
        (_("Contested: the newer edit wins (MoySklad's or the site's)"), {
            "fields": ("name", "description", "name_edited_at"),
            "description": _("Saving a new name or description here records it as a site edit; it stays until "
                             "someone edits it in MoySklad later."),
        }),
        (_("Site-owned (never touched by the sync)"), {"fields": ("slug", "seo_title", "seo_description")}),
        (_("From MoySklad (read-only)"), {"fields": ("category", "archived", "vat", "moysklad")}),
        (_("Timestamps"), {"fields": ("created_at", "updated_at")}),
    )
    inlines = (ProductImageInline, OfferInline, ProductBindingInline, FieldChangeInline)

    def get_queryset(self, request: HttpRequest) -> QuerySet[Product]:
        return super().get_queryset(request).prefetch_related(
            Prefetch("offers", queryset=Offer.objects.only("id", "product_id", "sku").order_by("sku")),
            Prefetch("bindings", queryset=ProductBinding.objects.filter(system=System.MOYSKLAD),
                     to_attr="moysklad_bindings"),
        )

    # Products come from MoySklad: created there, archived (never deleted) when gone upstream. A row
    # deleted here would be re-created by the next full sync without its site-owned fields.
    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    @admin.display(description=_("SKUs"))
    def skus(self, product: Product) -> str:
        skus = [o.sku for o in product.offers.all()]
        return ", ".join(skus[:3]) + (f" +{len(skus) - 3}" if len(skus) > 3 else "") if skus else "—"

    @admin.display(description=_("MoySklad"))
    def moysklad(self, product: Product) -> str:
        bindings = getattr(product, "moysklad_bindings", None)
        if bindings is None:
            bindings = list(product.bindings.filter(system=System.MOYSKLAD))
        if not bindings:
            return gettext("not linked")
        return format_html('<a href="{}" target="_blank" rel="noopener">open ↗</a>', moysklad_url(bindings[0].external_id))

    def save_model(self, request: HttpRequest, obj: Product, form: forms.ModelForm, change: bool) -> None:
        """Site-owned fields are saved as they are; a changed name or description goes through the
        contested-field service (history row + edit stamp). Only the changed columns are written, so
        a sync that ran while the form was open keeps what it wrote."""
        if not change:
            super().save_model(request, obj, form, change)
            return
        stored = Product.objects.filter(pk=obj.pk).values(*CONTESTED_FIELDS).get()
        edits: dict[str, str] = {}
        for field in CONTESTED_FIELDS:
            value = getattr(obj, field)
            if field in form.changed_data and _normalise_text(value) != _normalise_text(stored[field]):
                edits[field] = value
            else:
                setattr(obj, field, stored[field])  # unchanged (or only whitespace): keep the stored text
        site_fields = [f for f in form.changed_data if f not in CONTESTED_FIELDS]
        if site_fields:
            obj.save(update_fields=[*site_fields, "updated_at"])
        for field, value in edits.items():
            product_contested_set_by_site(product=obj, field=field, value=value)
        if edits:
            self.message_user(request, gettext("Saved %(fields)s as a site edit: it wins over older MoySklad data "
                                               "and is recorded in the history below.")
                              % {"fields": gettext(" and ").join(edits)}, messages.INFO)


# ------------------------------------------------------------------------------------------------
# Offer
# ------------------------------------------------------------------------------------------------
@admin.register(Offer)
class OfferAdmin(ReadOnlyAdminMixin, admin.ModelAdmin):
    """Sellable units (a product without variants, or a variant): all MoySklad-owned, so view-only.
    Shows stock per warehouse, barcodes and bindings."""

    list_display = ("sku", "name", "product_link", "price", "archived", "available_total", "updated_at", "page_link")
    list_filter = ("archived", "is_variant", "currency")
    list_select_related = ("product",)
    search_fields = ("sku", "name", "barcodes__value", "product__name")
    search_help_text = _("SKU, name, barcode or product name")
    fields = ("product_link", "sku", "name", "is_variant", "characteristics", "article", "code", "price",
              "currency", "archived", "available_total", "updated_at")
    readonly_fields = fields
    inlines = (StockLevelInline, BarcodeInline, OfferBindingInline)

    def get_queryset(self, request: HttpRequest) -> QuerySet[Offer]:
        active = Q(stock_levels__warehouse__archived=False)
        return super().get_queryset(request).annotate(
            _available=Coalesce(Sum("stock_levels__available", filter=active), 0,
                                output_field=DecimalField(max_digits=14, decimal_places=3)))

    @admin.display(description=_("product"), ordering="product__name")
    def product_link(self, offer: Offer) -> str:
        return admin_link(offer.product)

    @admin.display(description=_("everything about it"))
    def page_link(self, offer: Offer) -> str:
        return format_html('<a href="{}">{}</a>', reverse("backoffice:sku", args=[offer.sku]), gettext("SKU page"))

    @admin.display(description=_("available"), ordering="_available")
    def available_total(self, offer: Offer) -> str:
        return _qty(getattr(offer, "_available", None))


# ------------------------------------------------------------------------------------------------
# Category
# ------------------------------------------------------------------------------------------------
@admin.register(Category)
class CategoryAdmin(admin.ModelAdmin):
    """MoySklad folders: the tree (path, parent, name, archived) is synced; slug and SEO are the site's."""

    list_display = ("path", "name", "archived", "slug", "product_count", "updated_at")
    list_filter = ("archived",)
    search_fields = ("name", "path")
    fields = ("path", "name", "parent", "archived", "slug", "seo_title", "seo_description", "updated_at")
    readonly_fields = ("path", "name", "parent", "archived", "updated_at")
    inlines = (CategoryBindingInline,)

    def get_queryset(self, request: HttpRequest) -> QuerySet[Category]:
        return super().get_queryset(request).annotate(_products=Count("products"))

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False  # folders are created in MoySklad

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    @admin.display(description=_("products"), ordering="_products")
    def product_count(self, category: Category) -> int:
        return getattr(category, "_products", 0)


# ------------------------------------------------------------------------------------------------
# External SKUs (suppliers, 1C): the unmapped work list
# ------------------------------------------------------------------------------------------------
class MappedFilter(admin.SimpleListFilter):
    title = _("mapped")
    parameter_name = "mapped"

    def lookups(self, request: HttpRequest, model_admin: Any) -> list[tuple[str, str]]:
        return [("no", _("Unmapped")), ("yes", _("Mapped by a manager"))]

    def queryset(self, request: HttpRequest, queryset: QuerySet[ExternalSku]) -> QuerySet[ExternalSku]:
        if self.value() in ("no", "yes"):
            return queryset.filter(offer__isnull=self.value() == "no")
        return queryset


@admin.register(ExternalSku)
class ExternalSkuAdmin(admin.ModelAdmin):
    """SKUs a supplier or 1C sent that match none of our SKUs or barcodes. Pick the offer they mean:
    the next read applies their stock to it."""

    list_display = ("sku", "source", "name", "offer", "seen_count", "last_seen_at")
    list_filter = (MappedFilter, "source")
    search_fields = ("sku", "name", "offer__sku")
    search_help_text = _("their SKU, their name or our SKU")
    autocomplete_fields = ("offer",)
    fields = ("source", "sku", "name", "offer", "seen_count", "first_seen_at", "last_seen_at")
    readonly_fields = ("source", "sku", "name", "seen_count", "first_seen_at", "last_seen_at")
    ordering = ("-seen_count", "source", "sku")

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False
