"""Everything under /api answers JSON — unknown paths, other versions, wrong methods — and no API
route needs a CSRF cookie. The schema documents 401, the Idempotency-Key header and each error
code a route answers."""
import pytest
from django.test import Client

from tests.orders_fixtures import order_body, published, shop  # noqa: F401  (fixtures)

from .conftest import TOKEN

pytestmark = [pytest.mark.django_db, pytest.mark.security]


@pytest.fixture
def strict(api_token):
    """A client that enforces CSRF as a browser would be held to, with the bearer token."""
    return Client(enforce_csrf_checks=True, HTTP_AUTHORIZATION=f"Bearer {TOKEN}")


@pytest.mark.parametrize("method", ["get", "post", "put", "patch", "delete"])
@pytest.mark.parametrize("path", ["/api", "/api/", "/api/v1/", "/api/v2/products", "/api/v1/nothing",
                                  "/api/v1/products/", "/api/v1/nothing/a/b", "/api/v1/x\ny"])
def test_unknown_api_paths_are_json_404_for_every_method(strict, method, path):
    response = getattr(strict, method)(path)
    assert response.status_code == 404, response.content
    assert response["Content-Type"].startswith("application/json")
    assert response.json()["error"] == "not_found"


@pytest.mark.parametrize("method, path, allowed", [
    ("post", "/api/v1/products", "GET"), ("delete", "/api/v1/products/SKU-1", "GET"),
    ("put", "/api/v1/orders", "GET, POST"), ("patch", "/api/v1/orders/00000000-0000-0000-0000-000000000000", "GET"),
])
def test_wrong_methods_are_json_405_without_a_csrf_page(strict, method, path, allowed):
    response = getattr(strict, method)(path, data=b"{}", content_type="application/json")
    assert response.status_code == 405, response.content
    assert response.json()["error"] == "method_not_allowed"
    assert set(response["Allow"].split(", ")) == set(allowed.split(", "))


def test_an_order_needs_no_csrf_cookie_even_beside_an_admin_session(strict, shop, published, admin_user):
    strict.force_login(admin_user)  # a session cookie makes Django's CSRF check bite on cookie-auth views
    response = strict.post("/api/v1/orders", order_body(("PHONE-1", 1)), content_type="application/json",
                           HTTP_IDEMPOTENCY_KEY="no-csrf-1")
    assert response.status_code == 201, response.content


# -- the schema -------------------------------------------------------------------------------------
@pytest.fixture
def schema(client):
    return client.get("/api/v1/openapi.json").json()


def _operations(schema):
    for path, methods in schema["paths"].items():
        for method, operation in methods.items():
            yield path, method, operation


def test_every_operation_documents_401_and_its_error_codes(schema):
    for path, method, operation in _operations(schema):
        responses = operation["responses"]
        assert "401" in responses, (method, path)
        assert "400" in responses, (method, path)
        for status, response in responses.items():
            if int(status) >= 400:
                ref = response["content"]["application/json"]["schema"]["$ref"]
                component = schema["components"]["schemas"][ref.rsplit("/", 1)[-1]]
                assert "const" in component["properties"]["error"] or "enum" in component["properties"]["error"]


def _codes(schema, path, method, status):
    response = schema["paths"][path][method]["responses"][str(status)]
    ref = response["content"]["application/json"]["schema"]["$ref"]
    error = schema["components"]["schemas"][ref.rsplit("/", 1)[-1]]["properties"]["error"]
    return {error["const"]} if "const" in error else set(error["enum"])


def test_order_create_documents_the_header_and_its_codes(schema):
    operation = schema["paths"]["/api/v1/orders"]["post"]
    (header,) = [p for p in operation["parameters"] if p["in"] == "header"]
    assert header["name"] == "Idempotency-Key" and header["required"] is True
    expected = {400: "invalid", 401: "unauthorized", 409: "insufficient_stock", 413: "too_large",
                415: "unsupported_media_type", 422: "idempotency_mismatch", 500: "server_error"}
    for status, code in expected.items():
        assert _codes(schema, "/api/v1/orders", "post", status) == {code}


def test_lookups_document_their_404_codes(schema):
    assert _codes(schema, "/api/v1/products/{sku}", "get", 404) == {"unknown_sku"}
    assert _codes(schema, "/api/v1/orders/{order_id}", "get", 404) == {"unknown_order"}


def test_answers_match_the_documented_codes(api, schema, shop, published):
    """Provoke each documented error and check the answer carries the documented code."""
    cases = [
        ("/api/v1/products/{sku}", "get", api.get("/api/v1/products/NOPE")),
        ("/api/v1/orders/{order_id}", "get", api.get("/api/v1/orders/00000000-0000-0000-0000-000000000000")),
        ("/api/v1/products", "get", api.get("/api/v1/products", {"limit": 0})),
        ("/api/v1/orders", "post", api.post("/api/v1/orders", b"x", content_type="text/plain",
                                            HTTP_IDEMPOTENCY_KEY="k")),
        ("/api/v1/orders", "post", api.post("/api/v1/orders", order_body(("PHONE-1", 99)),
                                            content_type="application/json", HTTP_IDEMPOTENCY_KEY="k")),
        ("/api/v1/orders", "post", api.post("/api/v1/orders", order_body(("PHONE-1", 1)),
                                            content_type="application/json")),
    ]
    for path, method, response in cases:
        assert response.json()["error"] in _codes(schema, path, method, response.status_code), (path, response.json())


@pytest.mark.parametrize("ref", ["a/b/c", "line\nbreak", "x" * 300])
def test_any_order_id_gets_the_orders_own_404(api, ref):
    from urllib.parse import quote

    response = api.get(f"/api/v1/orders/{quote(ref, safe='/')}")
    assert response.status_code == 404 and response.json()["error"] == "unknown_order"


@pytest.mark.parametrize("sku", ["A/B", "line\nbreak", " "])
def test_any_sku_gets_the_products_own_404(api, sku):
    from urllib.parse import quote

    response = api.get(f"/api/v1/products/{quote(sku, safe='/')}")
    assert response.status_code == 404 and response.json()["error"] == "unknown_sku"
