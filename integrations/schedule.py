"""When each job runs, and why. Pure data: settings build the Celery beat schedule from it and
`manage.py sync --list` prints it. Minutes are staggered so jobs sharing an upstream budget do
not start together; each entry expires before its next run so a backlog never piles up."""
from dataclasses import dataclass

from celery.schedules import crontab


@dataclass(frozen=True)
class Entry:
    job: str
    cron: crontab
    human: str
    why: str
    full: bool = False
    expires: int = 300


SCHEDULE: tuple[Entry, ...] = (
    Entry("moysklad-catalog", crontab(minute="1-59/10"), "every 10 min",
          "delta by `updated`: new goods and prices reach the site within minutes", expires=540),
    Entry("moysklad-catalog", crontab(minute=17, hour=3), "nightly 03:17", 
          "full pass: reconciles archived and deleted goods that a delta cannot see",
          full=True, expires=3 * 3600),
    Entry("moysklad-stock", crontab(minute="*/5"), "every 5 min",
          "changed stock via changedSince; webhooks make it faster, this makes it certain",
          expires=270),
    Entry("moysklad-stock", crontab(minute=47, hour=3), "nightly 03:47",
          "full stock report: the API wants one full read a day besides changedSince",
          full=True, expires=3 * 3600),
    Entry("orders-export", crontab(), "every minute",
          "the outbox sweep: exports orders whose after-commit task was lost (broker down, worker killed)",
          expires=50),
    Entry("moysklad-order-statuses", crontab(minute="3-59/5"), "every 5 min",
          "order states and shipments by `updated`, for webhooks MoySklad dropped", expires=270),
    Entry("marketplace-stock", crontab(), "every minute",
          "safety net behind the debounced push each stock change schedules (kick): a lost task or a "
          "broker outage costs at most a minute; sends nothing when every marketplace is in sync",
          expires=50),
    Entry("marketplace-stock", crontab(minute=23, hour=4), "nightly 04:23",
          "full push, reconciling drift on the marketplace side; after the 03:47 full stock read. "
          "Ozon's 80-a-minute budget makes 100,000 offers take about 13 minutes",
          full=True, expires=3 * 3600),
    Entry("marketplace-orders", crontab(minute="*/2"), "every 2 min",
          "new marketplace orders hold their stock within minutes even without push notifications "
          "(each marketplace's order list is cheap: one call per 50–100 orders)", expires=100),
    Entry("marketplace-order-actions", crontab(), "every minute",
          "the outbox sweep behind the after-commit kick: a lost task delays a shipment call by a minute",
          expires=50),
    Entry("marketplace-returns", crontab(minute="9-59/15"), "every 15 min",
          "returns move slowly (days); WB claims allow 20 calls a minute", expires=800),
    Entry("marketplace-stock-alerts", crontab(minute="7-59/10"), "every 10 min",
          "offers shown as 0 for 2 h while we have stock to sell: one alert each until it clears",
          expires=540),
    Entry("onec-stock", crontab(minute="2-59/5"), "every 5 min",
          "1C stock changed since the last run (changedAfter, with an overlap); the 1C webhook and the "
          "CommerceML exchange make it faster, this makes it certain", expires=270),
    Entry("onec-stock", crontab(minute=53, hour=3), "nightly 03:53",
          "full read of 1C's stock: zeroes what 1C no longer lists (a delta cannot see removals)",
          full=True, expires=3 * 3600),
    Entry("supplier-stock", crontab(minute="13-59/30"), "every 30 min",
          "each supplier in its own task: API delta by updated_since, feeds read whole (a feed has no delta)",
          expires=1500),
    Entry("supplier-stock", crontab(minute=33, hour=2), "nightly 02:33",
          "full read of every supplier: zero-missing suppliers drop what they no longer list; before the "
          "03:47 MoySklad full read and the 04:23 marketplace full push",
          full=True, expires=3 * 3600),
)

# Tasks that are not jobs (no JobRun, no cursor): name -> (task, cron, expiry seconds, why).
TASKS: dict[str, tuple[str, crontab, int, str]] = {
    "moysklad-events-sweep": ("integrations.moysklad.events_sweep", crontab(), 50,
                              "re-signals webhook events (and owed e-mails) whose queue message was lost"),
    "onec-sweep": ("integrations.onec.sweep", crontab(), 50,
                   "re-signals 1C webhook pushes and CommerceML imports whose queue message was lost"),
    "supplier-events-sweep": ("suppliers.events_sweep", crontab(), 50,
                              "re-signals supplier webhook events whose queue message was lost"),
    "back-in-stock-sweep": ("stock.back_in_stock_sweep", crontab(minute="*/10"), 540,
                            "e-mails waiting back-in-stock subscribers of offers in stock now (a lost signal)"),
}


def beat_schedule() -> dict:
    schedule = {}
    for entry in SCHEDULE:
        key = f"{entry.job}{' (full)' if entry.full else ''}"
        schedule[key] = {
            "task": "integrations.run_job",
            "schedule": entry.cron,
            "args": (entry.job,),
            "kwargs": {"full": entry.full},
            "options": {"expires": entry.expires},
        }
    for key, (task, cron, expires, _why) in TASKS.items():
        schedule[key] = {"task": task, "schedule": cron, "options": {"expires": expires}}
    return schedule
