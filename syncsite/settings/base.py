"""Core Django settings. Every value comes from the environment (see README, "Settings")."""
import os
import secrets
from pathlib import Path

from django.core.exceptions import ImproperlyConfigured

from syncsite.env import BASE_DIR, VAR_DIR, env

VAR_DIR.mkdir(exist_ok=True)


DEBUG = env.bool("DEBUG", default=False)


def _required(name: str, value, how: str):
    """Production (DEBUG off) never invents a value every container would invent differently:
    without it, web, worker and beat refuse to start and say what to set."""
    if not value:
        raise ImproperlyConfigured(
            f"{name} is not set. {how} Development runs with DEBUG=1 (`make run` and the test suite set "
            f"their own local values); see .env.example.")
    return value


def _secret_key() -> str:
    """SECRET_KEY from the environment; in development (DEBUG=1) a random key kept in var/."""
    value = env.str("SECRET_KEY", default="")
    if value or not DEBUG:
        return _required("SECRET_KEY", value, "Production needs one long random value shared by every container "
                         "(python -c 'import secrets; print(secrets.token_urlsafe(50))'), or logins and signed "
                         "links break on every restart.")
    path = VAR_DIR / "secret_key"
    if not path.exists():
        path.write_text(secrets.token_urlsafe(50))
        path.chmod(0o600)
    return path.read_text().strip()


SECRET_KEY = _secret_key()
ALLOWED_HOSTS = env.list("ALLOWED_HOSTS", default=["localhost", "127.0.0.1", "[::1]"] if DEBUG else [])
_required("ALLOWED_HOSTS", ALLOWED_HOSTS, "List the domain names the site answers to, comma-separated "
          "(shop.example.com,www.shop.example.com); any other Host gets 400.")
SITE_URL = env.str("SITE_URL", default="http://127.0.0.1:8000").rstrip("/")
CSRF_TRUSTED_ORIGINS = env.list("CSRF_TRUSTED_ORIGINS", default=[SITE_URL])

# ---- HTTPS --------------------------------------------------------------------------------------
# On by default in production (DEBUG off), each switchable: redirect http to https, HSTS, cookies
# only over https. Behind a proxy that terminates TLS, the app sees plain http: tell it which
# header the proxy sets (SECURE_PROXY_SSL_HEADER=HTTP_X_FORWARDED_PROTO,https — only if the
# proxy always sets or overwrites it), or switch SECURE_SSL_REDIRECT off and let the proxy redirect.
_HTTPS = not DEBUG
SECURE_SSL_REDIRECT = env.bool("SECURE_SSL_REDIRECT", default=_HTTPS)
# Container healthchecks call /health/ over plain http from inside.
SECURE_REDIRECT_EXEMPT = [r"^health/$"]
SECURE_HSTS_SECONDS = env.int("SECURE_HSTS_SECONDS", default=31_536_000 if _HTTPS else 0)
SECURE_HSTS_INCLUDE_SUBDOMAINS = env.bool("SECURE_HSTS_INCLUDE_SUBDOMAINS", default=_HTTPS)
# Preloading is hard to undo (browsers ship the list): opt in, never a default.
SECURE_HSTS_PRELOAD = env.bool("SECURE_HSTS_PRELOAD", default=False)
SESSION_COOKIE_SECURE = env.bool("SESSION_COOKIE_SECURE", default=_HTTPS)
CSRF_COOKIE_SECURE = env.bool("CSRF_COOKIE_SECURE", default=_HTTPS)
_proxy_header = env.list("SECURE_PROXY_SSL_HEADER", default=[])
SECURE_PROXY_SSL_HEADER = tuple(_proxy_header) if len(_proxy_header) == 2 else None
if _proxy_header and SECURE_PROXY_SSL_HEADER is None:
    raise ImproperlyConfigured("SECURE_PROXY_SSL_HEADER takes two values: HEADER,VALUE "
                               "(e.g. HTTP_X_FORWARDED_PROTO,https)")
# security.W021 only says preloading is off; that is the operator's choice above.
SILENCED_SYSTEM_CHECKS = [] if SECURE_HSTS_PRELOAD else ["security.W021"]

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "django_celery_beat",
    "ninja",  # serves the API docs assets locally (no CDN)
    "catalog",
    "stock",
    "orders",
    "integrations",
    "integrations.marketplace_orders",
    "integrations.suppliers",
    "integrations.onec",
]

MIDDLEWARE = [
    # First: webhooks are answered from a short path, without sessions, auth, CSRF or messages.
    "syncsite.middleware.WebhookShortCircuitMiddleware",
    "django.middleware.security.SecurityMiddleware",
    # Static files (admin CSS, API docs assets) served by the app itself, compressed and cached,
    # so gunicorn with DEBUG off needs no separate web server for them.
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    # The admin speaks the language the manager chose (the header's switch, kept in a cookie), else
    # the browser's Accept-Language, else LANGUAGE_CODE.
    "django.middleware.locale.LocaleMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    # An admin action posted by someone without the change permission: 403 (read-only role).
    "syncsite.admin_guard.AdminActionPermissionMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
]

ROOT_URLCONF = "syncsite.urls"
WSGI_APPLICATION = "syncsite.wsgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
            ],
        },
    },
]

DATABASES = {"default": env.db("DATABASE_URL", default=f"sqlite:///{VAR_DIR / 'syncsite.sqlite3'}")}
if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    # Web, worker and beat share one file: wait for locks instead of failing, take the write
    # lock up front (no deadlocked upgrades) and let readers run beside the writer (WAL).
    DATABASES["default"].setdefault("OPTIONS", {}).update(
        {
            "timeout": 30,
            "transaction_mode": "IMMEDIATE",
            "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;",
        }
    )
    # A file (not :memory:) so worker threads in tests see the same data; one per process so
    # parallel test runs never share it.
    DATABASES["default"].setdefault("TEST", {})["NAME"] = str(VAR_DIR / f"test-{os.getpid()}.sqlite3")
else:
    DATABASES["default"].setdefault("CONN_MAX_AGE", env.int("DB_CONN_MAX_AGE", default=60))
    DATABASES["default"]["CONN_HEALTH_CHECKS"] = True
    # One test database per process: parallel test runs on one server never collide.
    DATABASES["default"].setdefault("TEST", {})["NAME"] = f"test_{DATABASES['default']['NAME']}_{os.getpid()}"
# PostgreSQL planner: random reads cost this much (syncsite.bulk.tune_planner); 0 leaves the server's.
DB_RANDOM_PAGE_COST = env.float("DB_RANDOM_PAGE_COST", default=1.1)
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
]

# Russian and English. LANGUAGE_CODE is the fallback for a browser that asks for neither (`make run`
# sets ru). Times are stored in UTC (USE_TZ) and shown in TIME_ZONE: the shop's Moscow time.
LANGUAGES = [("ru", "Русский"), ("en", "English")]
LANGUAGE_CODE = env.str("LANGUAGE_CODE", default="en")
LOCALE_PATHS = [BASE_DIR / "locale"]
LANGUAGE_COOKIE_NAME = "syncsite_language"
LANGUAGE_COOKIE_AGE = 365 * 24 * 3600
TIME_ZONE = env.str("TIME_ZONE", default="Europe/Moscow")
USE_I18N = True
USE_TZ = True
# 24-hour dates in English too ("4 Dec 2026, 16:24", never "4:24 p.m."): syncsite/formats/<lang>.
FORMAT_MODULE_PATH = ["syncsite.formats"]

STATIC_URL = "static/"
STATIC_ROOT = Path(env.str("STATIC_ROOT", default=str(VAR_DIR / "static")))
STATIC_ROOT.mkdir(parents=True, exist_ok=True)  # WhiteNoise serves (and indexes) it from the start
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    # gzip/brotli copies made by collectstatic; names stay as they are, so pages render the same
    # whether or not collectstatic ran (development, tests).
    "staticfiles": {"BACKEND": "whitenoise.storage.CompressedStaticFilesStorage"},
}

EMAIL_CONFIG = env.email_url("EMAIL_URL", default="consolemail://")
vars().update(EMAIL_CONFIG)
DEFAULT_FROM_EMAIL = env.str("DEFAULT_FROM_EMAIL", default="shop@localhost")
MANAGER_EMAILS = env.list("MANAGER_EMAILS", default=[])

# Largest request body a webhook or API call may send (bytes); larger gets 413.
WEBHOOK_MAX_BODY = env.int("WEBHOOK_MAX_BODY", default=1_048_576)
DATA_UPLOAD_MAX_MEMORY_SIZE = max(WEBHOOK_MAX_BODY, 2_621_440)

# Leases on work rows (syncsite/leases.py): a dead worker's work is free again this long after its
# last heartbeat; the heartbeat renews every third of it.
LEASE_SECONDS = env.float("LEASE_SECONDS", default=30.0)

STOREFRONT_API_TOKEN = env.str("STOREFRONT_API_TOKEN", default="")
# Storefront API budgets (syncsite/api_limits.py), as "N/second|minute|hour" ("" = no limit): calls
# per token, calls per client address, and failed logins per client address (a guessing client is
# held off well before the budget of a real storefront, which calls server to server and often).
API_RATE_LIMIT = env.str("API_RATE_LIMIT", default="60000/minute")
API_RATE_LIMIT_PER_IP = env.str("API_RATE_LIMIT_PER_IP", default="60000/minute")
API_AUTH_FAILURE_LIMIT = env.str("API_AUTH_FAILURE_LIMIT", default="1200/minute")
# Where the client address comes from: REMOTE_ADDR, or a header your proxy sets and clients cannot
# (e.g. HTTP_X_REAL_IP behind nginx with `proxy_set_header X-Real-IP $remote_addr`).
API_CLIENT_IP_HEADER = env.str("API_CLIENT_IP_HEADER", default="REMOTE_ADDR")
# A cached stock figure older than this is re-checked live by POST /api/v1/cart/check.
STOCK_STALE_SECONDS = env.int("STOCK_STALE_SECONDS", default=300)

# Django configures logging through this: dictConfig, after installing the masking of secrets
# (webhook tokens in paths, credentials in URLs) for every record the process logs.
LOGGING_CONFIG = "syncsite.logmask.configure"
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"plain": {"format": "%(asctime)s %(levelname)s %(name)s %(message)s"}},
    "handlers": {"console": {"class": "logging.StreamHandler", "formatter": "plain"}},
    "root": {"handlers": ["console"], "level": env.str("LOG_LEVEL", default="INFO")},
    "loggers": {
        "httpx": {"level": "WARNING"},
        "django.db.backends": {"level": "WARNING"},
    },
}

from .celery import *  # noqa: E402,F401,F403
from .integrations import *  # noqa: E402,F401,F403
