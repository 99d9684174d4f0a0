"""`manage.py moysklad_webhooks register|list|unregister`: MoySklad webhook subscriptions that point
at this site (SITE_URL + /webhooks/moysklad/<MOYSKLAD_WEBHOOK_TOKEN>/).

`register` is idempotent: it creates what is missing, re-enables what MoySklad switched off after
failures, replaces our subscriptions that still carry an old token, and leaves everything else
alone (other integrations' webhooks are never touched). It also seeds the order state mapping
from the account's states. `unregister` deletes only subscriptions under our SITE_URL.
"""
from __future__ import annotations

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError

from integrations.http.errors import NotConfigured, RejectedError, UpstreamError
from integrations.moysklad.client import MoySkladClient
from integrations.moysklad.events import SUBSCRIPTIONS, webhook_url
from integrations.moysklad.orders import state_mapping_seed

DUPLICATE = 30003       # (entityType, action, url) already subscribed
TOO_MANY = 30007        # more than 5 subscriptions of one kind
NOT_ALLOWED = (30004, 30006)  # not an administrator / tariff without webhooks
STOCK_SUBSCRIPTION = {"stockType": "stock", "reportType": "bystore"}


def _prefix() -> str:
    return f"{settings.SITE_URL.rstrip('/')}/webhooks/moysklad/"


def _mask(url: str) -> str:
    prefix = _prefix()
    if url.startswith(prefix):
        token = url[len(prefix):].strip("/")
        return f"{prefix}{token[:4]}…/" if token else url
    return url


class Command(BaseCommand):
    help = "Manage MoySklad webhook subscriptions pointing at SITE_URL: register, list or unregister."

    def add_arguments(self, parser):
        parser.add_argument("action", choices=["register", "list", "unregister"])

    def handle(self, *args, **opts):
        try:
            client = MoySkladClient()
        except NotConfigured as exc:
            raise CommandError(str(exc))
        with client:
            try:
                getattr(self, f"_{opts['action']}")(client)
            except RejectedError as exc:
                if set(exc.codes) & set(NOT_ALLOWED):
                    raise CommandError(f"MoySklad refused: {exc} (webhooks need an administrator on a paid tariff)")
                raise CommandError(str(exc))
            except UpstreamError as exc:
                raise CommandError(str(exc))

    # -- register -------------------------------------------------------------------------------
    def _register(self, client: MoySkladClient) -> None:
        if not settings.MOYSKLAD.get("WEBHOOK_TOKEN"):
            raise CommandError("set MOYSKLAD_WEBHOOK_TOKEN first: the webhook answers 404 without it")
        url = webhook_url()
        if len(url) > 255:
            raise CommandError(f"the webhook URL is {len(url)} characters; MoySklad allows 255 (shorten the token)")
        if not url.startswith("https://"):
            self.stderr.write(self.style.WARNING(f"SITE_URL is not https ({settings.SITE_URL}): "
                                                 "the real MoySklad needs a public https address"))
        prefix = _prefix()
        existing = client.webhooks()
        summary = {"created": 0, "enabled": 0, "kept": 0, "replaced": 0}
        for entity_type, action in SUBSCRIPTIONS:
            same_kind = [w for w in existing if w.get("entityType") == entity_type and w.get("action") == action]
            ours = [w for w in same_kind if w.get("url") == url]
            for stale in [w for w in same_kind if w.get("url", "").startswith(prefix) and w.get("url") != url]:
                client.webhook_delete(stale["id"])  # our address with an old token: it only gets 404s
                summary["replaced"] += 1
            if ours:
                if not ours[0].get("enabled", True):
                    client.webhook_update(ours[0]["id"], {"enabled": True})
                    summary["enabled"] += 1
                else:
                    summary["kept"] += 1
                continue
            try:
                client.webhook_create({"url": url, "action": action, "entityType": entity_type, "enabled": True})
                summary["created"] += 1
            except RejectedError as exc:
                if DUPLICATE in exc.codes:
                    summary["kept"] += 1
                elif TOO_MANY in exc.codes:
                    raise CommandError(f"{entity_type} {action}: MoySklad allows 5 subscriptions of one kind; "
                                       "remove an unused one first") from None
                else:
                    raise
            self.stdout.write(f"  {entity_type:<14} {action:<7} subscribed")
        self._register_stock(client, url, prefix, summary)
        added = state_mapping_seed(client=client)
        self.stdout.write(self.style.SUCCESS(
            f"webhooks → {_mask(url)}: {summary['created']} created, {summary['enabled']} re-enabled, "
            f"{summary['kept']} already there, {summary['replaced']} old-token ones replaced; "
            f"{added} order state(s) added to the mapping"))

    def _register_stock(self, client: MoySkladClient, url: str, prefix: str, summary: dict) -> None:
        existing = client.webhookstocks()
        for stale in [w for w in existing if w.get("url", "").startswith(prefix) and w.get("url") != url]:
            client.webhookstock_delete(stale["id"])
            summary["replaced"] += 1
        ours = [w for w in existing if w.get("url") == url]
        if ours:
            if not ours[0].get("enabled", True):
                client.webhookstock_update(ours[0]["id"], {"enabled": True})
                summary["enabled"] += 1
            else:
                summary["kept"] += 1
            return
        try:
            client.webhookstock_create({"url": url, "enabled": True, **STOCK_SUBSCRIPTION})
            summary["created"] += 1
            self.stdout.write(f"  {'stock':<14} {'bystore':<7} subscribed")
        except RejectedError as exc:
            if DUPLICATE not in exc.codes:
                raise
            summary["kept"] += 1

    # -- list -----------------------------------------------------------------------------------
    def _list(self, client: MoySkladClient) -> None:
        prefix = _prefix()
        url = webhook_url() if settings.MOYSKLAD.get("WEBHOOK_TOKEN") else None
        rows = [(w.get("entityType", "?"), w.get("action", "?"), w) for w in client.webhooks()]
        rows += [("stock", w.get("reportType", "?"), w) for w in client.webhookstocks()]
        if not rows:
            self.stdout.write("no webhooks in this MoySklad account")
            return
        self.stdout.write(f"{'entity':<14} {'action':<8} {'enabled':<8} {'whose':<10} url")
        for entity, action, w in sorted(rows, key=lambda r: (r[0], r[1])):
            target = w.get("url", "")
            whose = "this site" if url and target == url else ("old token" if target.startswith(prefix) else "other")
            self.stdout.write(f"{entity:<14} {action:<8} {str(w.get('enabled', True)).lower():<8} {whose:<10} "
                              f"{_mask(target)}")

    # -- unregister -----------------------------------------------------------------------------
    def _unregister(self, client: MoySkladClient) -> None:
        prefix = _prefix()
        removed = 0
        for w in client.webhooks():
            if w.get("url", "").startswith(prefix):
                client.webhook_delete(w["id"])
                removed += 1
        for w in client.webhookstocks():
            if w.get("url", "").startswith(prefix):
                client.webhookstock_delete(w["id"])
                removed += 1
        self.stdout.write(self.style.SUCCESS(f"removed {removed} webhook(s) pointing at {prefix}"))
