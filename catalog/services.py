"""Catalog writes. Contested fields (name, description) go to the newer side and every change is
recorded in FieldChange; site-owned fields are never touched here."""
from __future__ import annotations

from datetime import datetime

from django.db import transaction
from django.utils import timezone

from .models import FieldChange, Product

CONTESTED_FIELDS = ("name", "description")


def contested_resolve(*, product: Product, field: str, upstream_value: str, upstream_changed_at: datetime | None,
                      source: str = FieldChange.Source.MOYSKLAD) -> FieldChange | None:
    """Apply an upstream value of a contested field to `product` (in memory) unless the site's own
    edit is newer. Returns the history row to store (accepted or not), or None when equal."""
    current = getattr(product, field)
    if current == upstream_value:
        return None
    site_edited_at = product.name_edited_at
    when = upstream_changed_at or timezone.now()
    if product.pk is None:
        setattr(product, field, upstream_value)
        return None  # a new product has no history to speak of
    if site_edited_at and upstream_changed_at and site_edited_at > upstream_changed_at:
        return FieldChange(product=product, field=field, old_value=current, new_value=upstream_value,
                           source=source, accepted=False, changed_at=when)
    setattr(product, field, upstream_value)
    return FieldChange(product=product, field=field, old_value=current, new_value=upstream_value,
                       source=source, accepted=True, changed_at=when)


def product_contested_set_by_site(*, product: Product, field: str, value: str) -> FieldChange | None:
    """A manager edits a contested field in the admin: the site's edit becomes the newer one."""
    if field not in CONTESTED_FIELDS:
        raise ValueError(f"{field} is not a contested field")
    old = Product.objects.filter(pk=product.pk).values_list(field, flat=True).first()
    if old == value:
        return None
    now = timezone.now()
    with transaction.atomic():
        setattr(product, field, value)
        product.name_edited_at = now
        product.save(update_fields=[field, "name_edited_at", "updated_at"])
        return FieldChange.objects.create(product=product, field=field, old_value=old or "", new_value=value,
                                          source=FieldChange.Source.SITE, accepted=True, changed_at=now)
