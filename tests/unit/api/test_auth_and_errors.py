"""Bearer auth, the JSON error shape, and the public OpenAPI schema."""
import json

import pytest

from .conftest import TOKEN

pytestmark = pytest.mark.django_db

PRODUCTS = "/api/v1/products"


def _assert_unauthorized(response):
    assert response.status_code == 401
    assert response["Content-Type"].startswith("application/json")
    assert response.json()["error"] == "unauthorized"
    assert response["WWW-Authenticate"].startswith("Bearer")


def test_no_token_is_401(client, api_token):
    _assert_unauthorized(client.get(PRODUCTS))


@pytest.mark.parametrize("header", [
    "Bearer wrong-token",
    f"Bearer {TOKEN}x",
    f"Basic {TOKEN}",
    "Bearer",
    "Bearer пароль",  # non-ASCII must be a 401, not a 500 from compare_digest
])
def test_wrong_token_is_401(client, api_token, header):
    _assert_unauthorized(client.get(PRODUCTS, HTTP_AUTHORIZATION=header))


def test_unset_token_refuses_everything(client, settings):
    settings.STOREFRONT_API_TOKEN = ""
    for header in ("", "Bearer ", "Bearer anything"):
        response = client.get(PRODUCTS, HTTP_AUTHORIZATION=header)
        _assert_unauthorized(response)
        assert "STOREFRONT_API_TOKEN" in response.json()["detail"]
    _assert_unauthorized(client.get(f"{PRODUCTS}/SKU-1"))


def test_auth_is_checked_before_validation(client, api_token):
    # A stranger learns nothing about parameters: 401 even for a malformed query.
    _assert_unauthorized(client.get(PRODUCTS, {"cursor": "%%%", "limit": "x"}))


def test_right_token_is_200(api):
    response = api.get(PRODUCTS)
    assert response.status_code == 200
    assert response.json() == {"items": [], "next": None}


def test_openapi_schema_is_public_and_lists_the_paths(client, settings):
    settings.STOREFRONT_API_TOKEN = ""
    response = client.get("/api/v1/openapi.json")
    assert response.status_code == 200
    schema = response.json()
    assert "/api/v1/products" in schema["paths"]
    assert "/api/v1/products/{sku}" in schema["paths"]
    assert schema["components"]["securitySchemes"]["StorefrontBearer"]["scheme"] == "bearer"
    listed = schema["paths"]["/api/v1/products"]["get"]
    assert {p["name"] for p in listed["parameters"]} >= {"updated_since", "cursor", "limit"}


def test_docs_page_is_served(client):
    assert client.get("/api/v1/docs").status_code == 200


def test_unknown_endpoint_is_json_404(api):
    response = api.get("/api/v1/nothing-here")
    assert response.status_code == 404
    assert response.json()["error"] == "not_found"


def test_unexpected_error_is_json_500_without_traceback(api, monkeypatch):
    def boom(**kwargs):
        raise RuntimeError("secret internals")

    monkeypatch.setattr("catalog.api.storefront_product_list", boom)
    response = api.get(PRODUCTS)
    assert response.status_code == 500
    body = response.json()
    assert body["error"] == "server_error"
    assert "secret internals" not in response.content.decode()


def test_api_root_is_json_404(api):
    response = api.get("/api/v1/")
    assert response.status_code == 404
    assert response.json()["error"] == "not_found"


def test_wrong_method_is_json_405(api):
    response = api.post(PRODUCTS, {}, content_type="application/json")
    assert response.status_code == 405
    assert response.json()["error"] == "method_not_allowed"
    assert response["Allow"] == "GET"


def test_oversized_body_is_413_and_other_suspicious_input_400(rf):
    from django.core.exceptions import RequestDataTooBig, TooManyFieldsSent

    from syncsite.api import api

    request = rf.post(PRODUCTS)
    response = api.on_exception(request, RequestDataTooBig("too big"))
    assert response.status_code == 413
    assert json.loads(response.content)["error"] == "too_large"
    response = api.on_exception(request, TooManyFieldsSent("too many"))
    assert response.status_code == 400
    assert json.loads(response.content)["error"] == "invalid"
