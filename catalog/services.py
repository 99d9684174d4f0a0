"""Catalog writes. Contested fields (name, description) go to the newer side and every change is
recorded in FieldChange; site-owned fields are never touched here."""
from __future__ import annotations

from datetime import datetime

from django.db import transaction
from django.db.models import Max, Min, Q, Subquery
from django.utils import timezone

from .models import FieldChange, Product

CONTESTED_FIELDS = ("name", "description")


def contested_resolve(*, product: Product, field: str, upstream_value: str, upstream_changed_at: datetime | None,
                      last_upstream_value: str | None = None,
                      source: str = FieldChange.Source.MOYSKLAD) -> FieldChange | None:
    """Apply an upstream value of a contested field to `product` (in memory) unless the site's own
    edit is newer. Returns the history row to store (accepted or not), or None when nothing changed.

    `last_upstream_value` is the value upstream sent last time (see `contested_last_upstream`). When
    upstream still sends it, upstream did not edit this field: whatever the site holds stays, even
    if the upstream record changed for some other reason (a price) after the site's edit."""
    current = getattr(product, field)
    if product.pk is None:
        setattr(product, field, upstream_value)
        return None  # a new product has no history to speak of
    if current == upstream_value:
        return None
    if last_upstream_value is not None and upstream_value == last_upstream_value:
        return None  # upstream did not touch it; the difference is the site's edit
    site_edited_at = product.name_edited_at
    when = upstream_changed_at or timezone.now()
    if site_edited_at and upstream_changed_at and site_edited_at > upstream_changed_at:
        return FieldChange(product=product, field=field, old_value=current, new_value=upstream_value,
                           source=source, accepted=False, changed_at=when)
    setattr(product, field, upstream_value)
    return FieldChange(product=product, field=field, old_value=current, new_value=upstream_value,
                       source=source, accepted=True, changed_at=when)


def contested_last_upstream(*, product_ids: list[int], source: str = FieldChange.Source.MOYSKLAD
                            ) -> dict[tuple[int, str], str]:
    """{(product id, field): the value upstream sent last}, in one query for a page of products.

    That is the newest upstream FieldChange (accepted or not); failing that, the value the site's
    first edit replaced (it came from upstream). Products the site never edited are absent: their
    current value is upstream's anyway."""
    if not product_ids:
        return {}
    base = FieldChange.objects.filter(product_id__in=product_ids, field__in=CONTESTED_FIELDS)
    newest_upstream = base.filter(source=source).values("product_id", "field").annotate(pick=Max("id")).values("pick")
    first_site = base.filter(source=FieldChange.Source.SITE).values("product_id", "field").annotate(
        pick=Min("id")).values("pick")
    out: dict[tuple[int, str], str] = {}
    for product_id, field, src, old, new in FieldChange.objects.filter(
            Q(id__in=Subquery(newest_upstream)) | Q(id__in=Subquery(first_site))).values_list(
            "product_id", "field", "source", "old_value", "new_value"):
        if src == source:
            out[(product_id, field)] = new
        else:
            out.setdefault((product_id, field), old)
    return out


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
