"""Thin Celery tasks; the work is in pushes.py and exchange_import.py."""
from celery import shared_task


@shared_task(name="integrations.onec.push_process", acks_late=True, autoretry_for=(Exception,),
             max_retries=4, retry_backoff=15, retry_backoff_max=300, retry_jitter=True)
def push_process_task(push_id: int) -> str:
    from .pushes import push_process

    return push_process(push_id=push_id)


@shared_task(name="integrations.onec.exchange_import", acks_late=True)
def exchange_import_task(upload_id: int) -> str:
    from .exchange_import import upload_import

    return upload_import(upload_id=upload_id)


@shared_task(name="integrations.onec.sweep", acks_late=True, ignore_result=True)
def sweep_task() -> dict:
    from .pushes import sweep

    return sweep()
