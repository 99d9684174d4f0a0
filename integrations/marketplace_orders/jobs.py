"""The wing's jobs, registered from its AppConfig.ready() (the registry never imports them)."""
from __future__ import annotations

from datetime import timedelta

from integrations.runs import JobContext, JobSpec

from . import outbox, pull, returns


def actions_job(ctx: JobContext) -> None:
    """Job `marketplace-order-actions`: plan and run the outbox (for kicks that were lost)."""
    for outcome, n in outbox.actions_flush().items():
        ctx.count(outcome, n)


def _any_marketplace() -> bool:
    return pull.configured()


def register_all() -> None:
    from integrations.jobs import register

    register(JobSpec("marketplace-orders", pull.orders_pull, _any_marketplace,
                     "New and changed FBS orders from Ozon (v4 postings), Wildberries (new tasks + status "
                     "batches) and Yandex Market (business orders) → the order table; holds stock at once",
                     overlap=timedelta(minutes=10)))
    register(JobSpec("marketplace-returns", returns.returns_pull, _any_marketplace,
                     "Ozon and Yandex Market returns, Wildberries claims: recorded once, units restored once "
                     "(MoySklad salesreturn or our stock), the manager told in Telegram",
                     overlap=timedelta(hours=1)))
    register(JobSpec("marketplace-order-actions", actions_job, _any_marketplace,
                     "The outbox of marketplace actions (ship, supply, cancel, status updates) and MoySklad "
                     "states after marketplace-side cancellations: each once per status change",
                     overlap=timedelta(0)))
