import pytest

from integrations.suppliers.models import Supplier

from .conftest import make_supplier

pytestmark = pytest.mark.django_db


def test_supplier_admin_never_shows_the_token(admin_client):
    supplier = make_supplier(token="very-secret-token-123")
    page = admin_client.get(f"/admin/suppliers/supplier/{supplier.pk}/change/")
    assert page.status_code == 200
    assert b"very-secret-token-123" not in page.content
    assert supplier.token_encrypted.encode() not in page.content
    listing = admin_client.get("/admin/suppliers/supplier/")
    assert listing.status_code == 200 and b"acme" in listing.content


def test_admin_sets_and_keeps_the_token(admin_client):
    data = {"slug": "beta", "name": "Beta", "active": "on", "kind": "csv", "url": "https://beta.example/p.csv",
            "new_token": "typed-token", "webhook_secret": "", "page_size": 500, "api_dialect": "{}",
            "csv_sku_column": "sku", "csv_stock_column": "stock", "csv_delimiter": "", "csv_encoding": "",
            "yml_sku_source": "vendorCode", "yml_in_stock_quantity": 1}
    response = admin_client.post("/admin/suppliers/supplier/add/", data)
    assert response.status_code == 302, response.content[:2000]
    supplier = Supplier.objects.get(slug="beta")
    assert supplier.token == "typed-token"
    data["new_token"] = ""
    admin_client.post(f"/admin/suppliers/supplier/{supplier.pk}/change/", data)
    supplier.refresh_from_db()
    assert supplier.token == "typed-token"


def test_event_admin_lists(admin_client):
    assert admin_client.get("/admin/suppliers/supplierevent/").status_code == 200


def test_read_now_action_only_enqueues(admin_client, published):
    supplier = make_supplier()
    admin_client.post("/admin/suppliers/supplier/", {"action": "read_now", "_selected_action": [supplier.pk]})
    assert published.calls == [("suppliers.read", ("acme", False))]
