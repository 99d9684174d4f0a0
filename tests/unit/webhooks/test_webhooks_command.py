"""`manage.py moysklad_webhooks register|list|unregister`."""
from io import StringIO

import pytest
from django.core.management import CommandError, call_command

from integrations.models import OrderStateMapping
from integrations.moysklad.events import SUBSCRIPTIONS

pytestmark = pytest.mark.django_db
URL = "https://shop.example.com/webhooks/moysklad/hook-secret-token/"


def run(*args) -> str:
    out = StringIO()
    call_command("moysklad_webhooks", *args, stdout=out, stderr=StringIO())
    return out.getvalue()


def test_register_subscribes_every_handled_event_once(fake_ms):
    output = run("register")
    assert {(w["entityType"], w["action"]) for w in fake_ms.webhooks.values()} == set(SUBSCRIPTIONS)
    assert all(w["url"] == URL for w in fake_ms.webhooks.values())
    (stock,) = fake_ms.webhookstocks.values()
    assert (stock["url"], stock["reportType"], stock["stockType"]) == (URL, "bystore", "stock")
    assert OrderStateMapping.objects.count() == 7
    assert "hook-secret-token" not in output  # the secret is masked
    posts = len(fake_ms.calls("POST"))
    run("register")  # idempotent
    assert len(fake_ms.calls("POST")) == posts
    assert len(fake_ms.webhooks) == len(SUBSCRIPTIONS)


def test_register_reenables_disabled_and_replaces_old_tokens(fake_ms):
    fake_ms.webhooks["old"] = {"id": "old", "entityType": "customerorder", "action": "UPDATE", "enabled": True,
                               "url": "https://shop.example.com/webhooks/moysklad/old-token/"}
    fake_ms.webhooks["off"] = {"id": "off", "entityType": "demand", "action": "CREATE", "enabled": False, "url": URL}
    fake_ms.webhooks["other"] = {"id": "other", "entityType": "demand", "action": "CREATE", "enabled": True,
                                 "url": "https://crm.example.com/hook"}
    run("register")
    assert "old" not in fake_ms.webhooks and fake_ms.webhooks["off"]["enabled"] is True
    assert "other" in fake_ms.webhooks  # never touch other integrations
    assert sum(1 for w in fake_ms.webhooks.values() if w["url"] == URL) == len(SUBSCRIPTIONS)


def test_register_treats_a_duplicate_answer_as_done(fake_ms):
    from tests.moysklad_orders_fake import _error

    original = fake_ms._webhooks

    def racing(m, kind, wid, body):
        if m == "POST" and kind == "webhook" and body.get("entityType") == "product" and body["action"] == "UPDATE":
            return _error(412, 30003, "duplicate")
        return original(m, kind, wid, body)

    fake_ms._webhooks = racing
    run("register")
    assert len(fake_ms.webhooks) == len(SUBSCRIPTIONS) - 1


def test_register_without_token_refuses(fake_ms, settings):
    settings.MOYSKLAD = {**settings.MOYSKLAD, "WEBHOOK_TOKEN": ""}
    with pytest.raises(CommandError, match="MOYSKLAD_WEBHOOK_TOKEN"):
        run("register")
    assert not fake_ms.webhooks


def test_list_and_unregister_only_ours(fake_ms):
    run("register")
    fake_ms.webhooks["other"] = {"id": "other", "entityType": "demand", "action": "CREATE", "enabled": True,
                                 "url": "https://crm.example.com/hook"}
    listing = run("list")
    assert "this site" in listing and "other" in listing and "hook-secret-token" not in listing
    run("unregister")
    assert list(fake_ms.webhooks) == ["other"] and not fake_ms.webhookstocks


def test_not_configured_is_a_clear_error(db, settings):
    settings.MOYSKLAD = {**settings.MOYSKLAD, "TOKEN": "", "LOGIN": "", "PASSWORD": ""}
    with pytest.raises(CommandError, match="not configured"):
        run("list")
