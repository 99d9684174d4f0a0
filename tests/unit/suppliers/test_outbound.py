import httpx
import pytest
import respx

from integrations.http import outbound
from integrations.http.outbound import OutboundRefused, check_url, guarded_client

pytestmark = pytest.mark.django_db


@pytest.mark.parametrize("url", ["http://127.0.0.1/feed.csv", "https://10.1.2.3/x", "http://169.254.169.254/latest/",
                                 "http://192.168.0.10/", "http://[::1]/", "http://[::ffff:127.0.0.1]/",
                                 "http://100.64.0.1/", "http://0.0.0.0/"])
def test_internal_addresses_refused_and_nothing_sent(url):
    with respx.mock(assert_all_called=False) as mock:
        route = mock.get(url).respond(200)
        with pytest.raises(OutboundRefused):
            with guarded_client(timeout=5) as client:
                client.get(url)
        assert not route.called


def test_a_name_resolving_inside_is_refused(monkeypatch):
    monkeypatch.setattr(outbound, "_resolve", lambda host, port: ["93.184.215.14", "10.0.0.5"])
    with pytest.raises(OutboundRefused, match="10.0.0.5"):
        check_url("https://feeds.example/x.yml")


@pytest.mark.parametrize("url", ["ftp://feeds.example/x", "file:///etc/passwd", "gopher://x/"])
def test_only_http_and_https(url):
    with pytest.raises(OutboundRefused):
        check_url(url)


def test_redirect_to_an_internal_address_refused():
    with respx.mock(assert_all_called=False) as mock:
        mock.get("https://feeds.example/x.csv").respond(302, headers={"Location": "http://169.254.169.254/meta"})
        inner = mock.get("http://169.254.169.254/meta").respond(200, text="secret")
        with pytest.raises(OutboundRefused):
            with guarded_client(timeout=5, follow_redirects=True) as client:
                client.get("https://feeds.example/x.csv")
        assert not inner.called


def test_setting_allows_private(settings):
    settings.OUTBOUND_ALLOW_PRIVATE = True
    with respx.mock() as mock:
        mock.get("http://127.0.0.1:8000/feed").respond(200, text="ok")
        with guarded_client(timeout=5) as client:
            assert client.get("http://127.0.0.1:8000/feed").text == "ok"


def test_public_address_allowed():
    with respx.mock() as mock:
        mock.get("https://feeds.example/ok").respond(200, text="ok")
        with guarded_client(timeout=5) as client:
            assert client.get("https://feeds.example/ok").status_code == 200


def test_unresolvable_host_is_a_connect_error(monkeypatch):
    import socket

    def boom(host, port):
        raise socket.gaierror("no such host")

    monkeypatch.setattr(outbound, "_resolve", boom)
    with pytest.raises(httpx.ConnectError):
        check_url("https://nowhere.example/")
