"""The job registry: job name (fixed in the public interface) -> the function that does it.
Celery's `integrations.run_job` task, `manage.py sync JOB` and the admin all look jobs up here."""
from __future__ import annotations

from datetime import timedelta

from django.conf import settings
from django.utils.translation import gettext_lazy as _

from .marketplaces import jobs as marketplace_jobs
from .moysklad import client as moysklad_client
from .moysklad import jobs as moysklad_jobs
from .runs import JobSpec


def _moysklad_configured() -> bool:
    return moysklad_client.is_configured()


def _moysklad_overlap() -> timedelta:
    return timedelta(seconds=settings.MOYSKLAD["OVERLAP_SECONDS"])


JOBS: dict[str, JobSpec] = {}


def register(spec: JobSpec) -> JobSpec:
    JOBS[spec.name] = spec
    return spec


register(JobSpec("moysklad-catalog", moysklad_jobs.catalog_import, _moysklad_configured,
                 _("MoySklad folders, products and variants → catalog (delta by updated; --full reconciles deletions)"),
                 overlap=_moysklad_overlap()))
register(JobSpec("moysklad-stock", moysklad_jobs.stock_import, _moysklad_configured,
                 _("MoySklad stock and reserve per warehouse (changedSince; --full reads every store)"),
                 overlap=_moysklad_overlap()))


# -- orders (issue 3): site -> MoySklad export, statuses back ---------------------------------------
from .moysklad import orders as moysklad_orders  # noqa: E402

register(JobSpec("orders-export", moysklad_orders.orders_export, _moysklad_configured,
                 _("Orders MoySklad does not hold yet (the outbox) → customerorder, exactly once (externalCode + syncId)"),
                 overlap=timedelta(0)))
register(JobSpec("moysklad-order-statuses", moysklad_orders.order_statuses_import, _moysklad_configured,
                 _("Order states and shipments changed in MoySklad → site statuses (for webhooks that were lost)"),
                 overlap=_moysklad_overlap()))


def order_created(order_id: int) -> None:
    """The kick from orders.services after an order commits: export it now. Never blocks on a
    dead broker; `orders-export` (every minute) exports whatever this signal did not."""
    from syncsite import publish as publisher

    from .moysklad.tasks import order_export_task

    publisher.publish(order_export_task, order_id)


def order_status_changed(order_id: int) -> None:
    """The kick from orders.services after a marketplace order's status change commits: the
    outbox plans and runs its marketplace action now (`marketplace-order-actions` catches a lost
    kick within a minute)."""
    from .marketplace_orders.outbox import kick

    kick()


def stock_changed(*, offer_ids: list[int], restocked: list[int]) -> None:
    """The hook from stock.services after a stock change commits: what we can sell of `offer_ids`
    changed (and `restocked` went from nothing to something in total). The marketplaces get a
    debounced push of just these offers."""
    from .marketplaces import kick

    kick(offer_ids)
    if restocked:
        # Back-in-stock e-mails: queued (never sent inline: this runs in the writer's request or
        # task), and only when someone waits for one of these offers (one indexed query).
        from stock.backinstock import waiting_among
        from stock.tasks import back_in_stock_task
        from syncsite import publish as publisher

        waited = waiting_among(restocked)
        if waited:
            publisher.publish(back_in_stock_task, waited, wait=0)


# -- marketplace stock (issue 4): Ozon, Wildberries, Yandex Market ---------------------------------
register(JobSpec("marketplace-stock", marketplace_jobs.stock_push, marketplace_jobs.configured,
                 _("Stock to Ozon, Wildberries and Yandex Market: only figures that differ from what each last "
                   "accepted, in full batches (--full sends every offer)")))
register(JobSpec("marketplace-stock-alerts", marketplace_jobs.stock_alerts_check, marketplace_jobs.configured,
                 _("Offers a marketplace shows as 0 for 2 h while we have stock: admin, e-mail, Telegram")))


def get(name: str) -> JobSpec:
    try:
        return JOBS[name]
    except KeyError:
        raise KeyError(f"unknown job {name!r}; known: {', '.join(sorted(JOBS))}") from None
