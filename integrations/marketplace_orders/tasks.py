"""Thin Celery task: the outbox of marketplace actions (outbox.py)."""
from celery import shared_task


@shared_task(name="integrations.marketplace_orders.actions_flush", acks_late=True, ignore_result=True)
def actions_flush_task() -> dict:
    """Plan and run due actions now. Losing this task loses nothing: `marketplace-order-actions`
    (every minute) runs the same."""
    from .outbox import actions_flush

    return actions_flush()
