"""`POST /webhooks/1c/stock/`: Bearer token in constant time; any bad item refuses the whole body
(400 listing them, nothing stored); otherwise stored, signalled after commit, 202; the push is
applied by a worker, and a push the broker never took is re-signalled by the sweeper."""
import json
from datetime import timedelta

import pytest
from django.utils import timezone

from integrations.onec.models import StockPush
from integrations.onec.pushes import push_process, sweep
from stock.models import StockChange, StockLevel

from .conftest import WEBHOOK_TOKEN

pytestmark = pytest.mark.django_db
URL = "/webhooks/1c/stock/"


def post(client, body, token=WEBHOOK_TOKEN, raw=None):
    headers = {"HTTP_AUTHORIZATION": f"Bearer {token}"} if token is not None else {}
    return client.post(URL, data=raw if raw is not None else json.dumps(body), content_type="application/json",
                       **headers)


def test_a_good_push_is_stored_signalled_202_and_applied_by_the_worker(
        client, onec, goods, published, kicks, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True):
        response = post(client, {"stocks": [{"sku": "A-1", "quantity": 4, "warehouse": "Основной"},
                                            {"sku": "B-2", "quantity": 0}]})
    assert response.status_code == 202 and response.json() == {"accepted": 2}
    push = StockPush.objects.get()
    assert published == [("integrations.onec.push_process", (push.pk,))]
    assert not StockLevel.objects.exists()          # nothing applied in the request
    with django_capture_on_commit_callbacks(execute=True):
        assert push_process(push_id=push.pk) == "done"
    assert push_process(push_id=push.pk) == "not-claimed"   # a repeated signal applies it once
    level = StockLevel.objects.get(offer=goods.a)
    assert (level.warehouse.code, level.stock, level.source) == ("1c:Основной", 4, "1c")
    assert list(StockChange.objects.values_list("via", "new_stock")) == [("webhook", 4)]
    assert kicks == [[goods.a.pk]]
    push.refresh_from_db()
    assert push.status == "done"


@pytest.mark.parametrize("item, error", [
    ({"sku": "A-1", "quantity": -1}, "quantity"),
    ({"sku": "A-1", "quantity": 1.5}, "quantity"),
    ({"sku": "A-1", "quantity": "3"}, "quantity"),
    ({"sku": "A-1", "quantity": True}, "quantity"),
    ({"sku": "A-1"}, "quantity"),
    ({"quantity": 3}, "sku"),
    ({"sku": "  ", "quantity": 3}, "sku"),
    ({"sku": "A-1", "quantity": 3, "warehouse": 5}, "warehouse"),
    ("A-1", "object"),
])
def test_any_bad_item_refuses_the_body_listing_it_and_nothing_is_stored(client, onec, goods, published, item, error):
    response = post(client, {"stocks": [{"sku": "B-2", "quantity": 1}, item]})
    assert response.status_code == 400
    body = response.json()
    assert body["error"] == "invalid"
    assert [b["index"] for b in body["items"]] == [1] and error in body["items"][0]["error"]
    assert not StockPush.objects.exists() and not published


def test_every_bad_item_is_listed(client, onec, goods, published):
    response = post(client, {"stocks": [{"sku": "", "quantity": 1}, {"sku": "B", "quantity": 1},
                                        {"sku": "C", "quantity": -5}]})
    assert [b["index"] for b in response.json()["items"]] == [0, 2]


@pytest.mark.parametrize("token", [None, "wrong", WEBHOOK_TOKEN + "x", ""])
def test_a_wrong_or_missing_token_is_401_and_nothing_stored(client, onec, published, token):
    response = post(client, {"stocks": [{"sku": "A-1", "quantity": 1}]}, token=token)
    assert response.status_code == 401
    assert not StockPush.objects.exists()


def test_unset_token_is_404(client, onec, settings, published):
    settings.ONEC = {**settings.ONEC, "WEBHOOK_TOKEN": ""}
    assert post(client, {"stocks": []}, token="").status_code == 404


@pytest.mark.parametrize("raw", [b"{", b"[]", b'{"stocks": {}}', b'{"stocks": [{"sku": "A", "quantity": NaN}]}'])
def test_malformed_bodies_are_400(client, onec, published, raw):
    assert post(client, None, raw=raw).status_code == 400
    assert not StockPush.objects.exists()


def test_an_oversized_body_is_413(client, onec, published, settings):
    settings.WEBHOOK_MAX_BODY = 100
    body = {"stocks": [{"sku": f"S{i}", "quantity": 1} for i in range(20)]}
    assert post(client, body).status_code == 413
    assert not StockPush.objects.exists()


def test_get_is_405(client, onec):
    assert client.get(URL, HTTP_AUTHORIZATION=f"Bearer {WEBHOOK_TOKEN}").status_code == 405


def test_broker_down_the_push_is_kept_and_the_sweeper_re_signals_it(
        client, onec, goods, monkeypatch, django_capture_on_commit_callbacks):
    from syncsite import publish as publisher

    monkeypatch.setattr(publisher, "publish", lambda *a, **k: False)   # the broker refuses everything
    with django_capture_on_commit_callbacks(execute=True):
        assert post(client, {"stocks": [{"sku": "A-1", "quantity": 2}]}).status_code == 202
    assert StockPush.objects.get().status == "received"
    signalled = []
    monkeypatch.setattr(publisher, "publish", lambda task, *args, **kw: signalled.append((task.name, args)) or True)
    assert sweep()["pushes"] == 0                                      # too fresh to be lost
    StockPush.objects.update(received_at=timezone.now() - timedelta(minutes=2))
    assert sweep()["pushes"] == 1
    assert signalled[0][0] == "integrations.onec.push_process"
    push_process(push_id=signalled[0][1][0])
    assert StockLevel.objects.get(offer=goods.a).stock == 2


def test_a_dead_workers_push_is_freed_by_the_sweeper(onec, goods, published):
    push = StockPush.objects.create(items=[{"sku": "A-1", "quantity": 1, "warehouse": ""}], item_count=1,
                                    status="processing", claimed_at=timezone.now() - timedelta(minutes=30),
                                    received_at=timezone.now() - timedelta(minutes=31))
    assert sweep() == {"pushes": 1, "freed": 1, "imports": 0}
    assert push_process(push_id=push.pk) == "done"


def test_an_older_push_applied_after_a_newer_one_does_not_undo_it(client, onec, goods, published):
    older = StockPush.objects.create(items=[{"sku": "A-1", "quantity": 9, "warehouse": ""},
                                            {"sku": "B-2", "quantity": 4, "warehouse": ""}], item_count=2,
                                     received_at=timezone.now() - timedelta(seconds=30))
    newer = StockPush.objects.create(items=[{"sku": "A-1", "quantity": 1, "warehouse": ""}], item_count=1)
    push_process(push_id=newer.pk)
    push_process(push_id=older.pk)       # its signal came late (lost, then swept)
    assert StockLevel.objects.get(offer=goods.a).stock == 1
    assert StockLevel.objects.get(offer=goods.b).stock == 4
    older.refresh_from_db()
    assert older.counts["superseded"] == 1


def test_an_empty_push_is_accepted_and_stores_nothing(client, onec, published):
    response = post(client, {"stocks": []})
    assert response.status_code == 202 and response.json() == {"accepted": 0}
    assert not StockPush.objects.exists() and not published
