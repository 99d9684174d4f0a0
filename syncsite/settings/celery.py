"""Celery: broker, reliability and the beat schedule (built from integrations/schedule.py)."""
from syncsite.env import VAR_DIR, env
from integrations.schedule import beat_schedule

_broker_dir = VAR_DIR / "broker"

# Embedded default: kombu's filesystem transport needs no server (one machine, `make run`).
CELERY_BROKER_URL = env.str("CELERY_BROKER_URL", default="filesystem://")
BROKER_IS_EMBEDDED = CELERY_BROKER_URL.startswith("filesystem://")
if BROKER_IS_EMBEDDED:
    for sub in ("queue", "processed", "control"):
        (_broker_dir / sub).mkdir(parents=True, exist_ok=True)
    CELERY_BROKER_TRANSPORT_OPTIONS = {
        "data_folder_in": str(_broker_dir / "queue"),
        "data_folder_out": str(_broker_dir / "queue"),
        "processed_folder": str(_broker_dir / "processed"),
        "control_folder": str(_broker_dir / "control"),
        "store_processed": False,
    }
else:
    # Redis: a task not acked within this many seconds is handed to another worker.
    CELERY_BROKER_TRANSPORT_OPTIONS = {"visibility_timeout": 3600}
CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True
# Shared Redis for rate limits and locks across workers ("" = in-process only).
REDIS_URL = env.str("REDIS_URL", default="" if BROKER_IS_EMBEDDED else CELERY_BROKER_URL)
# Without Redis, upstream rate budgets are shared by the processes of this machine (web, worker, a
# `manage.py sync`) through lock-guarded files here ("" = each process on its own).
RATE_LIMIT_DIR = env.str("RATE_LIMIT_DIR", default=str(VAR_DIR / "limits"))
# Circuit breaker per upstream credential (shared like the budgets): this many failures in a row
# (5xx, timeouts, refused credentials) stop calls to it for UPSTREAM_BREAKER_SECONDS; 0 = off.
UPSTREAM_BREAKER_FAILURES = env.int("UPSTREAM_BREAKER_FAILURES", default=20)
UPSTREAM_BREAKER_SECONDS = env.float("UPSTREAM_BREAKER_SECONDS", default=60.0)

CELERY_TASK_SERIALIZER = "json"
CELERY_RESULT_SERIALIZER = "json"
CELERY_ACCEPT_CONTENT = ["json"]
CELERY_TASK_IGNORE_RESULT = True
CELERY_TIMEZONE = "Europe/Moscow"
# The database row is the record of work; the queue is only a signal. Ack after the work so a
# killed worker's task is redelivered, and take one task at a time so none sit unacked.
CELERY_TASK_ACKS_LATE = True
CELERY_TASK_REJECT_ON_WORKER_LOST = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
CELERY_TASK_SOFT_TIME_LIMIT = env.int("CELERY_TASK_SOFT_TIME_LIMIT", default=50 * 60)
CELERY_TASK_TIME_LIMIT = CELERY_TASK_SOFT_TIME_LIMIT + 120
CELERY_TASK_ALWAYS_EAGER = env.bool("CELERY_TASK_ALWAYS_EAGER", default=False)
# Publishing must fail fast when the broker is down (webhooks answer within 1.5 s regardless).
CELERY_BROKER_CONNECTION_TIMEOUT = 1.0
CELERY_TASK_PUBLISH_RETRY = True
CELERY_TASK_PUBLISH_RETRY_POLICY = {"max_retries": 1, "interval_start": 0, "interval_step": 0.2}

# django-celery-beat's database scheduler, writing a heartbeat /health/ reads.
CELERY_BEAT_SCHEDULER = "syncsite.heartbeat:BeatScheduler"
CELERY_BEAT_SCHEDULE = beat_schedule()
