"""Customer e-mails. One per real status change: the `OrderStatusChange` row is claimed with a
conditional UPDATE before sending, so a redelivered task or a second worker sends nothing; a send
that fails gives the claim back so the retry can send it."""
from __future__ import annotations

import logging

from django.conf import settings
from django.core.mail import EmailMultiAlternatives
from django.template.loader import render_to_string
from django.utils import timezone

from .models import OrderStatusChange

log = logging.getLogger("syncsite.orders")

# What the customer reads (the shop writes to its customers in Russian).
STATUS_TEXT = {
    "pending": "принят", "confirmed": "подтверждён", "processing": "собирается",
    "partially_shipped": "отправлен частично", "shipped": "отправлен", "completed": "доставлен",
    "cancelled": "отменён", "returned": "оформлен возврат",
}


def order_status_email_send(*, change_id: int) -> bool:
    """Send the status e-mail for one history row, at most once. True when sent now."""
    now = timezone.now()
    claimed = OrderStatusChange.objects.filter(pk=change_id, notify=True, notified_at__isnull=True).update(
        notified_at=now)
    if not claimed:
        return False
    change = OrderStatusChange.objects.select_related("order").get(pk=change_id)
    order = change.order
    # The order's own contacts (never the matched customer's current ones): the e-mail goes where
    # the person who placed this order asked.
    customer = {"name": order.customer_name, "email": order.customer_email, "phone": order.customer_phone}
    context = {
        "order": order, "customer": customer, "change": change,
        "status": change.get_to_status_display(), "status_code": change.to_status,
        "status_text": STATUS_TEXT.get(change.to_status, change.to_status),
        "lines": list(order.lines.order_by("position", "id")), "site_url": settings.SITE_URL,
    }
    subject = " ".join(render_to_string("emails/order_status_subject.txt", context).split())
    body = render_to_string("emails/order_status.txt", context)
    html = render_to_string("emails/order_status.html", context)
    message = EmailMultiAlternatives(subject, body, settings.DEFAULT_FROM_EMAIL, [order.customer_email])
    message.attach_alternative(html, "text/html")
    try:
        message.send()
    except Exception:
        OrderStatusChange.objects.filter(pk=change_id, notified_at=now).update(notified_at=None)
        raise
    log.info("orders.email-sent order=%s status=%s", order.number, change.to_status)
    return True
