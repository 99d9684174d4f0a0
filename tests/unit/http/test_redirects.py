"""The base client follows no redirect: a configured host answering 302 to an internal address
must not make us send the request (and our credentials) there."""
import httpx
import pytest
import respx

from integrations.http.client import BaseClient
from integrations.http.errors import RedirectRefusedError
from integrations.moysklad.client import MoySkladClient

pytestmark = pytest.mark.security

BASE = "https://upstream.test/api"


@pytest.mark.parametrize("status", [301, 302, 303, 307, 308])
def test_a_redirect_to_loopback_is_not_followed(status):
    with respx.mock(assert_all_called=False) as router:
        router.get(f"{BASE}/items").respond(status, headers={"Location": "http://127.0.0.1:8000/admin/"})
        internal = router.route(host="127.0.0.1").respond(200, json={"secret": True})
        with BaseClient(BASE, headers={"Authorization": "Bearer t"}) as client:
            client.system = "upstream"
            with pytest.raises(RedirectRefusedError) as caught:
                client.request("GET", "/items")
        assert not internal.called
        assert router.calls.call_count == 1  # not retried either
    message = str(caught.value)
    assert f"{status} redirect" in message and "127.0.0.1:8000/admin/" in message and "base URL" in message
    assert caught.value.retryable is False


@pytest.mark.parametrize("location", [
    "https://upstream.test/other/items",        # same host, outside the base path
    "https://upstream.test/apiary/items",       # a path that merely starts like the base
    "http://upstream.test/api/items/",          # downgraded to http
    "https://upstream.test:8443/api/items/",    # another port
    "https://upstream.test.evil.example/api/",  # another host
])
def test_a_redirect_outside_the_base_url_is_refused(location):
    with respx.mock(assert_all_called=False) as router:
        router.get(f"{BASE}/items").respond(302, headers={"Location": location})
        elsewhere = router.route(url__startswith=location).respond(200, json={})
        with BaseClient(BASE) as client, pytest.raises(RedirectRefusedError):
            client.get_json("/items")
        assert not elsewhere.called


def test_a_redirect_under_the_base_url_is_followed_a_few_times_at_most():
    with respx.mock() as router:
        router.get(f"{BASE}/items").respond(308, headers={"Location": f"{BASE}/items/v2?x=1"})
        router.get(f"{BASE}/items/v2").respond(200, json={"ok": True})
        with BaseClient(BASE) as client:
            assert client.get_json("/items") == {"ok": True}
    with respx.mock() as router:
        router.get(url__startswith=f"{BASE}/loop").respond(302, headers={"Location": f"{BASE}/loop"})
        with BaseClient(BASE) as client, pytest.raises(RedirectRefusedError):
            client.get_json("/loop")
        assert router.calls.call_count == 1 + BaseClient.max_redirects


def test_the_moysklad_client_refuses_a_redirect_with_a_clear_error(moysklad_settings):
    with respx.mock(assert_all_called=False) as router:
        router.get(url__startswith=moysklad_settings["BASE_URL"]).respond(
            302, headers={"Location": "http://169.254.169.254/latest/meta-data/"})
        metadata = router.route(host="169.254.169.254").respond(200, text="iam")
        with MoySkladClient() as client, pytest.raises(RedirectRefusedError) as caught:
            client.get_json(f"{moysklad_settings['BASE_URL']}/entity/organization")
        assert not metadata.called
    assert "169.254.169.254" in str(caught.value)


def test_not_modified_is_not_a_redirect():
    with respx.mock() as router:
        router.get(f"{BASE}/items").mock(return_value=httpx.Response(304))
        with BaseClient(BASE) as client:
            assert client.request("GET", "/items").status_code == 304
