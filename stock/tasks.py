"""Stock's Celery tasks."""
from celery import shared_task


@shared_task(name="stock.back_in_stock_notify", acks_late=True, max_retries=3, autoretry_for=(OSError,),
             retry_backoff=60, retry_backoff_max=900)
def back_in_stock_task(offer_ids: list[int]) -> int:
    from .backinstock import notify

    return notify(offer_ids=offer_ids)


@shared_task(name="stock.back_in_stock_sweep", acks_late=True, ignore_result=True)
def back_in_stock_sweep_task() -> int:
    from .backinstock import sweep

    return sweep()
