import pytest

from catalog.models import ProductImage
from tests.factories import make_category, make_offer, make_product, make_stock

pytestmark = pytest.mark.django_db


def test_categories_tree(api):
    root = make_category(name="Посуда")
    child = make_category(name="Чайники", parent=root)
    make_category(name="Старое", archived=True)
    body = api.get("/api/v1/categories").json()
    assert body["items"] == [
        {"id": root.pk, "name": "Посуда", "parent_id": None, "path": "Посуда"},
        {"id": child.pk, "name": "Чайники", "parent_id": root.pk, "path": "Посуда/Чайники"},
    ]


def test_product_catalog_fields(api):
    category = make_category(name="Чайники")
    product = make_product(name="Чайник", category=category, description="<p>Стальной</p>", slug="chainik",
                           seo_title="Купить чайник", seo_description="Лучший чайник")
    ProductImage.objects.create(product=product, url="https://img.example/2.jpg", alt="сбоку", position=2)
    ProductImage.objects.create(product=product, url="https://img.example/1.jpg", alt="спереди", position=1)
    offer = make_offer(product=product, sku="K-1")
    body = api.get("/api/v1/products/K-1").json()
    assert body["description"] == "<p>Стальной</p>" and body["slug"] == "chainik"
    assert body["category"] == {"id": category.pk, "path": "Чайники"}
    assert body["seo"] == {"title": "Купить чайник", "description": "Лучший чайник"}
    assert [i["url"] for i in body["images"]] == ["https://img.example/1.jpg", "https://img.example/2.jpg"]
    assert body["group"] is None
    assert offer


def test_variant_group(api):
    product = make_product(name="Футболка", slug="tee")
    make_offer(product=product, sku="T-R", name="Футболка (красная)", is_variant=True,
               characteristics={"Цвет": "красный"})
    body = api.get("/api/v1/products/T-R").json()
    assert body["group"] == {"id": product.pk, "name": "Футболка", "slug": "tee", "characteristics": {"Цвет": "красный"}}
    assert body["images"] == [] and body["category"] is None


def test_category_filter_includes_subcategories(api):
    root = make_category(name="Посуда")
    child = make_category(name="Чайники", parent=root)
    other = make_category(name="Одежда")
    make_offer(product=make_product(category=root), sku="IN-ROOT")
    make_offer(product=make_product(category=child), sku="IN-CHILD")
    make_offer(product=make_product(category=other), sku="OUT")
    skus = {i["sku"] for i in api.get("/api/v1/products", {"category": root.pk}).json()["items"]}
    assert skus == {"IN-ROOT", "IN-CHILD"}
    assert {i["sku"] for i in api.get("/api/v1/products", {"category": child.pk}).json()["items"]} == {"IN-CHILD"}
    assert api.get("/api/v1/products", {"category": 999999}).json()["items"] == []
    bad = api.get("/api/v1/products", {"category": "tea"})
    assert bad.status_code == 400 and bad.json()["error"] == "invalid"


def test_supplier_warehouse_in_product_warehouses(api):
    from .conftest import make_supplier

    offer = make_offer(sku="S-1")
    supplier = make_supplier()
    make_stock(offer=offer, warehouse=supplier.warehouse(), stock=4, source="supplier:acme")
    body = api.get("/api/v1/products/S-1").json()
    assert body["available"] == 4 and body["warehouses"][0]["code"] == "supplier:acme"


def test_list_with_images_stays_two_queries(api, django_assert_max_num_queries):
    for n in range(30):
        product = make_product(category=make_category())
        ProductImage.objects.create(product=product, url=f"https://img.example/{n}.jpg")
        make_offer(product=product)
    with django_assert_max_num_queries(2):
        body = api.get("/api/v1/products", {"limit": 30}).json()
    assert all(len(i["images"]) == 1 for i in body["items"])


def test_openapi_documents_new_calls_with_401():
    from syncsite.api import api as ninja_api

    schema = ninja_api.get_openapi_schema()
    paths = schema["paths"]
    for path, method in (("/api/v1/categories", "get"), ("/api/v1/cart/check", "post"),
                         ("/api/v1/back-in-stock", "post"), ("/api/v1/products", "get")):
        assert 401 in paths[path][method]["responses"], path
    assert 503 in paths["/api/v1/cart/check"]["post"]["responses"]
    headers = [p["name"] for p in paths["/api/v1/orders"]["post"]["parameters"] if p["in"] == "header"]
    assert "Idempotency-Key" in headers
    product = schema["components"]["schemas"]["ProductOut"]["properties"]
    assert {"description", "category", "slug", "seo", "images", "group"} <= set(product)
