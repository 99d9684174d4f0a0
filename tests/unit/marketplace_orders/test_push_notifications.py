"""Ozon and YM push notifications: a hint to pull now (coalesced), never trusted as state."""
from __future__ import annotations

import pytest

pytestmark = pytest.mark.django_db

TOKEN = "push-secret-0123456789"


@pytest.fixture
def pushes(settings, monkeypatch):
    settings.MARKETPLACES = {**settings.MARKETPLACES, "PUSH_TOKEN": TOKEN}
    queued: list[tuple[str, str]] = []
    monkeypatch.setattr("integrations.services.job_enqueue", lambda *, job, full=False, trigger="admin":
                        queued.append((job, trigger)))
    return queued


def test_ozon_ping_and_new_posting(client, pushes):
    ping = client.post(f"/webhooks/marketplaces/{TOKEN}/ozon/", {"message_type": "TYPE_PING", "time": "x"},
                       content_type="application/json")
    assert ping.status_code == 200 and set(ping.json()) == {"version", "name", "time"}
    for _ in range(3):
        answer = client.post(f"/webhooks/marketplaces/{TOKEN}/ozon/",
                             {"message_type": "TYPE_NEW_POSTING", "posting_number": "1-1-1"},
                             content_type="application/json")
        assert answer.json() == {"result": True}
    assert pushes == [("marketplace-orders", "event")]  # three notifications, one run


def test_ym_notifications_queue_orders_or_returns(client, pushes):
    for kind in ("ORDER_CREATED", "ORDER_RETURN_CREATED", "PING"):
        answer = client.post(f"/webhooks/marketplaces/{TOKEN}/ym/notification", {"notificationType": kind},
                             content_type="application/json")
        assert answer.status_code == 200 and "time" in answer.json()
    assert pushes == [("marketplace-orders", "event"), ("marketplace-returns", "event")]


@pytest.mark.parametrize("path", ["ozon/", "ym/notification"])
def test_a_wrong_or_unset_token_and_bad_bodies_change_nothing(client, pushes, settings, path):
    assert client.post(f"/webhooks/marketplaces/wrong/{path}", {}, content_type="application/json").status_code == 404
    assert client.post(f"/webhooks/marketplaces/{TOKEN}/{path}", "nope", content_type="application/json").status_code == 400
    settings.MARKETPLACES = {**settings.MARKETPLACES, "PUSH_TOKEN": ""}
    assert client.post(f"/webhooks/marketplaces/{TOKEN}/{path}", {"message_type": "TYPE_PING"},
                       content_type="application/json").status_code == 404
    assert pushes == []
