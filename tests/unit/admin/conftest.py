from __future__ import annotations

from typing import Any

import pytest
from django.test import Client
from django.utils import timezone

from integrations.models import (
    CategoryBinding,
    JobRun,
    JobState,
    OfferBinding,
    ProductBinding,
    System,
    WarehouseBinding,
)
from tests.factories import make_category, make_offer, make_product, make_stock, make_warehouse


def change_form_data(client: Client, url: str, **overrides: Any) -> dict[str, Any]:
    """What a browser would post back from the admin change page at `url`, with `overrides`:
    the main form's current values plus every inline's management form and rows."""
    response = client.get(url)
    assert response.status_code == 200
    data: dict[str, Any] = {}

    def put(form) -> None:
        for name in form.fields:
            value = form[name].value()
            if value is None:
                continue
            data[form.add_prefix(name)] = value if not isinstance(value, bool) else ("on" if value else "")

    put(response.context["adminform"].form)
    for inline in response.context["inline_admin_formsets"]:
        formset = inline.formset
        for key, value in formset.management_form.initial.items():
            data[f"{formset.prefix}-{key}"] = value
        for form in formset.forms:
            put(form)
    data = {k: v for k, v in data.items() if v != ""}
    data.update(overrides)
    return data


@pytest.fixture
def catalog_rows(db):
    """A small linked catalog: category, product with one barcoded offer, stock in two warehouses,
    MoySklad bindings, a job run with errors and its job state."""
    category = make_category(name="Kitchen")
    product = make_product(name="Kettle", category=category, description="Line one\nLine two")
    offer = make_offer(product=product, sku="KET-1", barcodes=["4600000000017"])
    main, shop = make_warehouse(code="main", name="Main"), make_warehouse(code="shop", name="Shop")
    make_stock(offer=offer, warehouse=main, stock=5)
    make_stock(offer=offer, warehouse=shop, stock=2, reserve=1)
    ProductBinding.objects.create(system=System.MOYSKLAD, external_id="11111111-2222-3333-4444-555555555555",
                                  product=product)
    OfferBinding.objects.create(system=System.MOYSKLAD, external_id="11111111-2222-3333-4444-555555555555",
                                offer=offer, external_code="KET-1")
    CategoryBinding.objects.create(system=System.MOYSKLAD, external_id="cat-1", category=category)
    WarehouseBinding.objects.create(system=System.MOYSKLAD, external_id="store-1", warehouse=main)
    now = timezone.now()
    run = JobRun.objects.create(job="moysklad-catalog", status=JobRun.Status.SUCCESS, started_at=now,
                                finished_at=now, counts={"products_created": 3, "requests": 4},
                                errors=[{"ref": "abc", "error": "missing sale price"}], error_count=1,
                                progress_done=4, progress_total=4, message="1 record errors")
    JobState.objects.create(job="moysklad-catalog", cursor=now, last_run=run)
    return {"category": category, "product": product, "offer": offer, "warehouse": main, "run": run}
