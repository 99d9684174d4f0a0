"""Thin Celery tasks of the orders app."""
from smtplib import SMTPException

from celery import shared_task


@shared_task(name="orders.order_status_email", acks_late=True, autoretry_for=(SMTPException, OSError),
             max_retries=5, retry_backoff=30, retry_backoff_max=900, retry_jitter=True)
def order_status_email_task(change_id: int) -> bool:
    from .emails import order_status_email_send

    return order_status_email_send(change_id=change_id)
