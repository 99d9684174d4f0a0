"""Back-in-stock e-mails. `subscribe` records a wish; `notify` (a Celery task, started from the
stock-changed hook with the offers whose total available went from 0 to more than 0) claims each
waiting subscription with a conditional UPDATE and sends one Russian e-mail with an unsubscribe
link; a send that fails gives the claim back for the retry."""
from __future__ import annotations

import logging
import secrets
from decimal import Decimal

from django.conf import settings
from django.core.mail import EmailMultiAlternatives
from django.db import IntegrityError, transaction
from django.db.models import Sum
from django.template.loader import render_to_string
from django.urls import reverse
from django.utils import timezone

from .models import BackInStockSubscription, StockLevel

log = logging.getLogger("syncsite.stock.backinstock")


def subscribe(*, offer_id: int, email: str) -> BackInStockSubscription:
    email = email.strip()
    existing = BackInStockSubscription.objects.filter(offer_id=offer_id, email__iexact=email).first()
    if existing is not None:
        if existing.notified_at or existing.unsubscribed_at:
            existing.notified_at = existing.unsubscribed_at = None
            existing.save(update_fields=["notified_at", "unsubscribed_at"])
        return existing
    try:
        with transaction.atomic():
            return BackInStockSubscription.objects.create(offer_id=offer_id, email=email,
                                                          token=secrets.token_urlsafe(32))
    except IntegrityError:  # the same subscription, concurrently
        return BackInStockSubscription.objects.get(offer_id=offer_id, email=email)


def unsubscribe(*, token: str) -> bool:
    return bool(BackInStockSubscription.objects.filter(token=token, unsubscribed_at__isnull=True)
                .update(unsubscribed_at=timezone.now()))


def available_total(offer_id: int) -> Decimal:
    return StockLevel.objects.filter(offer_id=offer_id, warehouse__archived=False).aggregate(
        s=Sum("available"))["s"] or Decimal(0)


def waiting_among(offer_ids) -> list[int]:
    """Those of `offer_ids` someone waits for (the partial index on waiting subscriptions)."""
    ids = list(offer_ids)
    if not ids:
        return []
    return sorted(set(BackInStockSubscription.objects.filter(
        offer_id__in=ids, notified_at__isnull=True, unsubscribed_at__isnull=True).values_list("offer_id", flat=True)))


def notify(*, offer_ids: list[int]) -> int:
    """E-mail the waiting subscribers of these offers (those still in stock now). Returns sent."""
    sent = 0
    waiting = (BackInStockSubscription.objects.filter(offer_id__in=offer_ids, notified_at__isnull=True,
                                                      unsubscribed_at__isnull=True)
               .select_related("offer", "offer__product").order_by("offer_id", "id"))
    in_stock: dict[int, bool] = {}
    for sub in waiting:
        if sub.offer_id not in in_stock:
            in_stock[sub.offer_id] = available_total(sub.offer_id) > 0
        if in_stock[sub.offer_id] and email_send(subscription=sub):
            sent += 1
    return sent


def sweep(*, limit: int = 1000) -> int:
    """The safety net behind the stock-changed signal (lost when the broker was down): e-mail the
    waiting subscribers of offers that are in stock now. One query finds them."""
    waiting = BackInStockSubscription.objects.filter(notified_at__isnull=True, unsubscribed_at__isnull=True)
    offer_ids = list(StockLevel.objects.filter(offer_id__in=waiting.values("offer_id"), warehouse__archived=False)
                     .values("offer_id").annotate(total=Sum("available")).filter(total__gt=0)
                     .values_list("offer_id", flat=True)[:limit])
    return notify(offer_ids=offer_ids) if offer_ids else 0


def email_send(*, subscription: BackInStockSubscription) -> bool:
    now = timezone.now()
    claimed = BackInStockSubscription.objects.filter(pk=subscription.pk, notified_at__isnull=True,
                                                     unsubscribed_at__isnull=True).update(notified_at=now)
    if not claimed:
        return False
    offer = subscription.offer
    name = offer.name if offer.is_variant else offer.product.name
    site = settings.SITE_URL.rstrip("/")
    context = {"name": name, "sku": offer.sku, "site_url": site,
               "unsubscribe_url": site + reverse("back-in-stock-unsubscribe", args=[subscription.token])}
    subject = " ".join(render_to_string("emails/back_in_stock_subject.txt", context).split())
    body = render_to_string("emails/back_in_stock.txt", context)
    message = EmailMultiAlternatives(subject, body, settings.DEFAULT_FROM_EMAIL, [subscription.email],
                                     headers={"List-Unsubscribe": f"<{context['unsubscribe_url']}>"})
    try:
        message.send()
    except Exception:
        BackInStockSubscription.objects.filter(pk=subscription.pk, notified_at=now).update(notified_at=None)
        raise
    log.info("stock.back-in-stock-sent offer=%s", offer.pk)
    return True
