"""Every registered admin loads; search by SKU and barcode; ownership rules on the product form."""
import pytest
from django.contrib import admin
from django.urls import reverse

from catalog.models import FieldChange, Product

from .conftest import change_form_data

pytestmark = pytest.mark.django_db


def _registered():
    return sorted(admin.site._registry.items(), key=lambda item: item[0]._meta.label)


@pytest.mark.parametrize("model", [m for m, _ in _registered()], ids=lambda m: m._meta.label)
def test_changelist_and_change_page_load(admin_client, catalog_rows, model):
    opts = model._meta
    response = admin_client.get(reverse(f"admin:{opts.app_label}_{opts.model_name}_changelist"))
    assert response.status_code == 200
    obj = model._default_manager.first()
    if obj is not None:
        response = admin_client.get(reverse(f"admin:{opts.app_label}_{opts.model_name}_change", args=[obj.pk]))
        assert response.status_code == 200


def test_our_models_are_registered():
    labels = {m._meta.label for m, _ in _registered()}
    assert labels >= {
        "catalog.Category", "catalog.Product", "catalog.Offer", "stock.Warehouse", "stock.StockLevel",
        "integrations.JobRun", "integrations.JobState", "integrations.CategoryBinding",
        "integrations.ProductBinding", "integrations.OfferBinding", "integrations.WarehouseBinding",
    }


def test_admin_index_loads(admin_client):
    assert admin_client.get(reverse("admin:index")).status_code == 200


@pytest.mark.parametrize("query", ["KET-1", "ket-1", "4600000000017", "Kettle"])
def test_product_search_by_name_sku_and_barcode(admin_client, catalog_rows, query):
    from tests.factories import make_offer

    make_offer(sku="OTHER-9", name="Teapot", barcodes=["4600000000999"])
    response = admin_client.get(reverse("admin:catalog_product_changelist"), {"q": query})
    assert response.status_code == 200
    names = [p.name for p in response.context["cl"].result_list]
    assert names == ["Kettle"]


def test_offer_and_stock_search_by_barcode_and_sku(admin_client, catalog_rows):
    response = admin_client.get(reverse("admin:catalog_offer_changelist"), {"q": "4600000000017"})
    assert [o.sku for o in response.context["cl"].result_list] == ["KET-1"]
    response = admin_client.get(reverse("admin:stock_stocklevel_changelist"), {"q": "KET-1"})
    assert len(response.context["cl"].result_list) == 2


def test_product_page_shows_stock_per_warehouse_and_moysklad_link(admin_client, catalog_rows):
    product = catalog_rows["product"]
    html = admin_client.get(reverse("admin:catalog_product_change", args=[product.pk])).content.decode()
    assert "Main: 5" in html and "Shop: 1" in html
    assert "https://online.moysklad.ru/app/#good/edit?id=11111111-2222-3333-4444-555555555555" in html


def test_product_list_query_count_does_not_grow_with_rows(admin_client, catalog_rows, django_assert_max_num_queries):
    from tests.factories import make_offer

    url = reverse("admin:catalog_product_changelist")
    admin_client.get(url)  # warm the session and content-type caches
    for _ in range(30):
        make_offer(barcodes=["1"])
    with django_assert_max_num_queries(12):
        assert admin_client.get(url).status_code == 200


# -- ownership on the product form ----------------------------------------------------------------
def _product_url(product):
    return reverse("admin:catalog_product_change", args=[product.pk])


def test_editing_the_name_records_a_site_change(admin_client, catalog_rows):
    product = catalog_rows["product"]
    url = _product_url(product)
    response = admin_client.post(url, change_form_data(admin_client, url, name="Kettle 2000"))
    assert response.status_code == 302, response.context and response.context["adminform"].form.errors

    product.refresh_from_db()
    assert product.name == "Kettle 2000"
    assert product.name_edited_at is not None
    change = FieldChange.objects.get(product=product)
    assert (change.field, change.old_value, change.new_value, change.source, change.accepted) == (
        "name", "Kettle", "Kettle 2000", FieldChange.Source.SITE, True)


def test_editing_site_fields_records_no_contested_change(admin_client, catalog_rows):
    product = catalog_rows["product"]
    url = _product_url(product)
    # The browser sends the untouched description back with CRLF line ends.
    data = change_form_data(admin_client, url, slug="kettle", seo_title="Buy a kettle",
                            description="Line one\r\nLine two")
    assert admin_client.post(url, data).status_code == 302

    product.refresh_from_db()
    assert (product.slug, product.seo_title) == ("kettle", "Buy a kettle")
    assert product.description == "Line one\nLine two"
    assert product.name_edited_at is None
    assert not FieldChange.objects.exists()


def test_moysklad_owned_fields_cannot_be_changed(admin_client, catalog_rows):
    product = catalog_rows["product"]
    url = _product_url(product)
    data = change_form_data(admin_client, url, archived="on", vat="20", category="")
    assert admin_client.post(url, data).status_code == 302
    product.refresh_from_db()
    assert product.archived is False and product.vat is None
    assert product.category == catalog_rows["category"]


def test_images_are_editable(admin_client, catalog_rows):
    product = catalog_rows["product"]
    url = _product_url(product)
    data = change_form_data(admin_client, url, **{
        "images-TOTAL_FORMS": "1", "images-0-url": "https://cdn.example.com/kettle.jpg",
        "images-0-alt": "Kettle", "images-0-position": "0"})
    assert admin_client.post(url, data).status_code == 302
    assert list(Product.objects.get(pk=product.pk).images.values_list("url", flat=True)) == [
        "https://cdn.example.com/kettle.jpg"]


def test_products_cannot_be_added_or_deleted_here(admin_client, catalog_rows):
    assert admin_client.get(reverse("admin:catalog_product_add")).status_code == 403
    product = catalog_rows["product"]
    assert admin_client.get(reverse("admin:catalog_product_delete", args=[product.pk])).status_code == 403


def test_offer_is_view_only(admin_client, catalog_rows):
    offer = catalog_rows["offer"]
    url = reverse("admin:catalog_offer_change", args=[offer.pk])
    html = admin_client.get(url).content.decode()
    assert "4600000000017" in html  # barcode inline
    assert 'name="_save"' not in html
    assert admin_client.post(url, {"price": "1"}).status_code == 403
