"""Thin Celery task for the debounced, event-driven stock push (see debounce.py)."""
from celery import shared_task


@shared_task(name="integrations.marketplaces.push_stock", acks_late=True, ignore_result=True)
def push_stock_task() -> None:
    from .jobs import stock_push_on_event

    stock_push_on_event()
