"""Secrets never reach a log line.

The MoySklad webhook's secret is a path segment (MoySklad can send nothing else), so every line
that names the request path would carry it: gunicorn's access log, Django's `django.request`
warnings ("Not Found: /webhooks/moysklad/<token>/"), runserver's request log. Other credentials
can end up in URLs too (the Telegram Bot API puts its token in the path) and so in an HTTP client's
log line or an exception's text.

`install()` wraps the logging module's record factory, so every record created in the process, by
any logger, for any handler (Django's, gunicorn's, Celery's, a library's own), is masked once,
before any handler formats it: the path segment after `/webhooks/moysklad/` becomes `***` whatever
it is (a wrong token may be a near miss of the right one), and the configured secrets' values are
replaced wherever they appear. A record without a secret is left untouched (its message template
and arguments stay as they were). Django calls `configure` as its LOGGING_CONFIG, so every Django
process (gunicorn workers, runserver, Celery, manage.py) installs it with its logging settings;
`syncsite/gunicorn_conf.py` installs it in the gunicorn master too.
"""
from __future__ import annotations

import logging
import logging.config
import re
from urllib.parse import quote

MASK = "***"
#: path prefixes whose next segment is a secret
SECRET_PATHS = ("/webhooks/moysklad/",)
#: settings holding credentials: (dict setting, key) or (setting, None)
SECRET_SETTINGS = (
    ("MOYSKLAD", "WEBHOOK_TOKEN"), ("MOYSKLAD", "TOKEN"), ("MOYSKLAD", "PASSWORD"),
    ("ONEC", "WEBHOOK_TOKEN"), ("ONEC", "PASSWORD"), ("OZON", "API_KEY"), ("WILDBERRIES", "TOKEN"),
    ("YANDEX_MARKET", "API_KEY"), ("TELEGRAM", "BOT_TOKEN"), ("STOREFRONT_API_TOKEN", None),
    ("ONEC_EXCHANGE_PASSWORD", None), ("SECRET_KEY", None),
)
#: shorter values are not masked: a four-letter password would blank out ordinary words
MIN_SECRET_LENGTH = 8

_path_pattern = re.compile("(" + "|".join(re.escape(p) for p in SECRET_PATHS) + r")[^/\s?#\"'<>]+")
_cache: tuple[tuple[str, ...], re.Pattern | None] = ((), None)


def _secret_values() -> tuple[str, ...]:
    try:
        from django.conf import settings

        values = []
        for name, key in SECRET_SETTINGS:
            value = getattr(settings, name, None)
            if key is not None:
                value = value.get(key) if isinstance(value, dict) else None
            if isinstance(value, str) and len(value) >= MIN_SECRET_LENGTH:
                values.append(value)
        return tuple(values)
    except Exception:  # settings not configured (yet): only the path rule applies
        return ()


def _secrets_pattern() -> re.Pattern | None:
    global _cache
    values = _secret_values()
    if values != _cache[0]:
        variants = {v for value in values for v in (value, quote(value, safe=""))}
        pattern = re.compile("|".join(re.escape(v) for v in sorted(variants, key=len, reverse=True))) if variants else None
        _cache = (values, pattern)
    return _cache[1]


def mask(text: str) -> str:
    """`text` with every secret replaced by ***."""
    text = _path_pattern.sub(r"\1" + MASK, text)
    pattern = _secrets_pattern()
    return pattern.sub(MASK, text) if pattern is not None else text


def mask_record(record: logging.LogRecord) -> None:
    """Mask a record in place: its message (formatted now, only when it holds a secret), its
    exception text and its stack."""
    try:
        message = record.getMessage()
    except Exception:  # a broken format string: logging reports it when the record is emitted
        return
    masked = mask(message)
    if masked != message:
        record.msg, record.args = masked, None
    if record.exc_info and not record.exc_text:
        text = logging.Formatter().formatException(record.exc_info)
        if mask(text) != text:
            record.exc_text = mask(text)
    if record.stack_info:
        record.stack_info = mask(record.stack_info)


class MaskSecrets(logging.Filter):
    """The same masking as a filter, for a handler configured outside this process's factory."""

    def filter(self, record: logging.LogRecord) -> bool:
        mask_record(record)
        return True


_installed_factory = None


def install() -> None:
    """Mask every log record this process creates from now on (idempotent)."""
    global _installed_factory
    current = logging.getLogRecordFactory()
    if current is _installed_factory:
        return

    def factory(*args, **kwargs) -> logging.LogRecord:
        record = current(*args, **kwargs)
        mask_record(record)
        return record

    _installed_factory = factory
    logging.setLogRecordFactory(factory)


def configure(logging_settings: dict) -> None:
    """Django's LOGGING_CONFIG: the usual dictConfig, with masking installed first."""
    install()
    logging.config.dictConfig(logging_settings)
