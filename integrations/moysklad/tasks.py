"""Thin Celery tasks for orders and webhook events; the work is in orders.py and events.py."""
from celery import shared_task

from integrations.http.errors import RateLimitedError, UpstreamUnavailableError


@shared_task(name="integrations.moysklad.order_export", acks_late=True,
             autoretry_for=(UpstreamUnavailableError, RateLimitedError), max_retries=5,
             retry_backoff=10, retry_backoff_max=300, retry_jitter=True)
def order_export_task(order_id: int) -> str:
    """Export one new order now. Losing this task loses nothing: `orders-export` sweeps the outbox."""
    from .client import is_configured
    from .orders import order_export_one

    if not is_configured():
        return "not_configured"
    return order_export_one(order_id=order_id)


@shared_task(name="integrations.moysklad.events_process", bind=True, acks_late=True, max_retries=5)
def events_process_task(self, event_ids: list[int]) -> dict:
    from .events import events_process

    counts = events_process(event_ids=event_ids)
    if counts.get("retry"):
        # Transport trouble upstream: the rows are `received` again. Retry soon; if this task
        # is lost, the sweeper finds them.
        raise self.retry(countdown=min(300, 15 * 2 ** self.request.retries))
    return counts


@shared_task(name="integrations.moysklad.events_sweep", acks_late=True, ignore_result=True)
def events_sweep_task(follow_up: bool = True) -> dict:
    from .events import events_sweep

    return events_sweep(follow_up=follow_up)
