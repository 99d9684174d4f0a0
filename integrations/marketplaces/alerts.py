"""Zero-on-channel alerts: an offer we have stock to sell that a marketplace has shown as 0 for
MARKETPLACE_ZERO_ALERT_HOURS (2 h) gets one StockAlert — in the admin, by e-mail to
MANAGER_EMAILS and to Telegram when configured — and no other until it clears. The push keeps
`ChannelOffer.zero_since`; this only reads it."""
from __future__ import annotations

import logging
from datetime import timedelta

from django.conf import settings
from django.core.mail import send_mail
from django.db.models import Q, Subquery
from django.utils import timezone

from integrations.http.errors import NotConfigured, UpstreamError
from integrations.models import ChannelOffer, StockAlert
from integrations.runs import JobContext
from integrations.telegram import client as telegram
from syncsite.bulk import insert_ignore

log = logging.getLogger("syncsite.marketplaces")

#: lines listed in one message (the admin lists them all)
MESSAGE_LINES = 30


def stock_alerts_check(ctx: JobContext) -> None:
    now = timezone.now()
    threshold = now - timedelta(hours=settings.MARKETPLACES["ZERO_ALERT_HOURS"])
    # Cleared: the marketplace shows stock again (or we no longer have any to sell).
    cleared = list(StockAlert.objects.filter(cleared_at__isnull=True).filter(
        Q(channel_offer__zero_since__isnull=True) | Q(channel_offer__zero_since__gt=threshold))
        .select_related("channel_offer__channel", "channel_offer__offer"))
    StockAlert.objects.filter(pk__in=[a.pk for a in cleared]).update(cleared_at=now)
    ctx.count("alerts_cleared", len(cleared))
    # Opened: zero for long enough, and no open alert yet.
    open_ones = StockAlert.objects.filter(cleared_at__isnull=True).values("channel_offer_id")
    due = list(ChannelOffer.objects.filter(zero_since__lte=threshold, channel__enabled=True)
               .exclude(pk__in=Subquery(open_ones)).select_related("channel", "offer"))
    insert_ignore(StockAlert, [StockAlert(channel_offer=co, opened_at=now, message=_describe(co)) for co in due])
    ctx.count("alerts_opened", len(due))
    to_notify = list(StockAlert.objects.filter(cleared_at__isnull=True, notified=False)
                     .select_related("channel_offer__channel", "channel_offer__offer").order_by("opened_at", "pk"))
    back = [a for a in cleared if a.notified]
    if not to_notify and not back:
        return
    if stock_alerts_notify(new=to_notify, cleared=back, ctx=ctx):
        StockAlert.objects.filter(pk__in=[a.pk for a in to_notify]).update(notified=True, notified_at=now)
        ctx.count("alerts_notified", len(to_notify))


def _describe(co: ChannelOffer) -> str:
    since = timezone.localtime(co.zero_since).strftime("%Y-%m-%d %H:%M") if co.zero_since else "?"
    reason = f" — {co.error}" if co.error else ""
    return (f"{co.channel}: {co.offer.sku} {co.offer.name} shows 0 since {since}; "
            f"we would show {co.published_qty or 0}{reason}")[:2000]


def stock_alerts_notify(*, new: list[StockAlert], cleared: list[StockAlert], ctx: JobContext | None = None) -> bool:
    """One digest by e-mail and Telegram. True when it reached at least one of them, or when
    neither is configured (the admin list is then the alert)."""
    lines = []
    if new:
        lines.append(f"{len(new)} offer(s) show 0 on a marketplace while we have stock to sell:")
        lines += [f"• {a.message or _describe(a.channel_offer)}" for a in new[:MESSAGE_LINES]]
        if len(new) > MESSAGE_LINES:
            lines.append(f"… and {len(new) - MESSAGE_LINES} more (admin: Stock alerts)")
    if cleared:
        lines.append(f"Back on sale: {', '.join(f'{a.channel_offer.channel} {a.channel_offer.offer.sku}' for a in cleared[:MESSAGE_LINES])}")
    text = "\n".join(lines)
    subject = f"[SyncSite] {len(new)} offer(s) show 0 on marketplaces" if new else "[SyncSite] marketplace stock back"
    tried = delivered = 0
    recipients = list(getattr(settings, "MANAGER_EMAILS", []) or [])
    if recipients:
        tried += 1
        try:
            send_mail(subject, text, settings.DEFAULT_FROM_EMAIL, recipients)
            delivered += 1
        except Exception as exc:  # SMTP down: keep the alert unnotified, try at the next check
            log.warning("marketplace.alerts.mail-failed %s", exc)
            if ctx:
                ctx.error("alerts:mail", str(exc))
    if telegram.is_configured():
        tried += 1
        try:
            with telegram.TelegramClient() as bot:
                bot.send_message(text)
            delivered += 1
        except (UpstreamError, NotConfigured) as exc:
            log.warning("marketplace.alerts.telegram-failed %s", exc)
            if ctx:
                ctx.error("alerts:telegram", str(exc))
    return delivered > 0 or tried == 0
