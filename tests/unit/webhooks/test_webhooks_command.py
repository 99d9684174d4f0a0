"""`manage.py moysklad_webhooks register|list|unregister`, against the sandbox's MoySklad
in-process (`ms_respx`): its subscriptions are the order book's `webhooks` / `webhookstocks`."""
import json
from io import StringIO

import pytest
from django.core.management import CommandError, call_command

from integrations.models import OrderStateMapping
from integrations.moysklad.events import SUBSCRIPTIONS

pytestmark = pytest.mark.django_db
URL = "https://shop.example.com/webhooks/moysklad/hook-secret-token/"


def hooks(sb) -> dict:
    return sb.moysklad.orders.webhooks


def subscribe(sb, id_: str, entity_type: str, action: str, url: str, enabled: bool = True) -> None:
    """A subscription made before (by us with another token, or by another integration)."""
    hooks(sb)[id_] = {"id": id_, "url": url, "entityType": entity_type, "action": action, "diffType": "NONE",
                      "enabled": enabled}


def run(*args) -> str:
    out = StringIO()
    call_command("moysklad_webhooks", *args, stdout=out, stderr=StringIO())
    return out.getvalue()


def test_register_subscribes_every_handled_event_once(ms_respx):
    output = run("register")
    assert {(w["entityType"], w["action"]) for w in hooks(ms_respx).values()} == set(SUBSCRIPTIONS)
    assert all(w["url"] == URL for w in hooks(ms_respx).values())
    (stock,) = ms_respx.moysklad.orders.webhookstocks.values()
    assert (stock["url"], stock["reportType"], stock["stockType"]) == (URL, "bystore", "stock")
    assert OrderStateMapping.objects.count() == 7
    assert "hook-secret-token" not in output  # the secret is masked
    posts = len(ms_respx.moysklad.logged(method="POST"))
    assert posts == len(SUBSCRIPTIONS) + 1
    run("register")  # idempotent
    assert len(ms_respx.moysklad.logged(method="POST")) == posts
    assert len(hooks(ms_respx)) == len(SUBSCRIPTIONS)


def test_register_reenables_disabled_and_replaces_old_tokens(ms_respx):
    subscribe(ms_respx, "old", "customerorder", "UPDATE", "https://shop.example.com/webhooks/moysklad/old-token/")
    subscribe(ms_respx, "off", "demand", "CREATE", URL, enabled=False)
    subscribe(ms_respx, "other", "demand", "CREATE", "https://crm.example.com/hook")
    run("register")
    assert "old" not in hooks(ms_respx) and hooks(ms_respx)["off"]["enabled"] is True
    assert "other" in hooks(ms_respx)  # never touch other integrations
    assert sum(1 for w in hooks(ms_respx).values() if w["url"] == URL) == len(SUBSCRIPTIONS)


def test_register_treats_a_duplicate_answer_as_done(ms_respx):
    """Another registration subscribed product UPDATE between our listing and our create: MoySklad
    answers 30003 (duplicate), which counts as done."""
    def racing(request):
        body = json.loads(request.content or b"null")
        if request.method == "POST" and request.url.path.endswith("/entity/webhook") \
                and body.get("entityType") == "product" and body.get("action") == "UPDATE":
            subscribe(ms_respx, "raced", "product", "UPDATE", body["url"])

    ms_respx.before_request.append(racing)
    run("register")
    (answer,) = [r for r in ms_respx.moysklad.logged("entity/webhook", method="POST")
                 if (r.json()["entityType"], r.json()["action"]) == ("product", "UPDATE")]
    assert answer.status == 412 and json.loads(answer.body)["url"] == URL
    assert sum(1 for w in hooks(ms_respx).values() if w["url"] == URL) == len(SUBSCRIPTIONS)


def test_register_without_token_refuses(ms_respx, settings):
    settings.MOYSKLAD = {**settings.MOYSKLAD, "WEBHOOK_TOKEN": ""}
    with pytest.raises(CommandError, match="MOYSKLAD_WEBHOOK_TOKEN"):
        run("register")
    assert not hooks(ms_respx)


def test_list_and_unregister_only_ours(ms_respx):
    run("register")
    subscribe(ms_respx, "other", "demand", "CREATE", "https://crm.example.com/hook")
    listing = run("list")
    assert "this site" in listing and "other" in listing and "hook-secret-token" not in listing
    run("unregister")
    assert list(hooks(ms_respx)) == ["other"] and not ms_respx.moysklad.orders.webhookstocks


def test_not_configured_is_a_clear_error(db, settings):
    settings.MOYSKLAD = {**settings.MOYSKLAD, "TOKEN": "", "LOGIN": "", "PASSWORD": ""}
    with pytest.raises(CommandError, match="not configured"):
        run("list")
