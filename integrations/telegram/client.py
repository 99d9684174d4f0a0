"""Telegram Bot API: sendMessage only, for operator alerts. Configured when TELEGRAM_BOT_TOKEN and
TELEGRAM_CHAT_ID are set; otherwise alerts go by e-mail alone."""
from __future__ import annotations

import logging
import re

import httpx
from django.conf import settings

from integrations.http.client import BaseClient
from integrations.http.errors import NotConfigured
from integrations.http.ratelimit import Limiter, limiter_for

#: Telegram's own message limit; longer texts are cut (alerts list the first items only)
MESSAGE_MAX = 4096
#: a bot may send about 20 messages a minute to one group
MESSAGES_PER_MINUTE = 20


_TOKEN_IN_PATH = re.compile(r"/bot[^/\s]+")


def redact(text: str) -> str:
    """The bot token travels in the URL path (Bot API convention): keep it out of logs and errors."""
    return _TOKEN_IN_PATH.sub("/bot***", text)


class _RedactTokenFilter(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        if isinstance(record.args, tuple) and any(isinstance(a, str) and "/bot" in a for a in record.args):
            record.args = tuple(redact(a) if isinstance(a, str) else a for a in record.args)
        return True


logging.getLogger("syncsite.http").addFilter(_RedactTokenFilter())


def is_configured(conf: dict | None = None) -> bool:
    conf = conf or settings.TELEGRAM
    return bool(conf["BOT_TOKEN"] and conf["CHAT_ID"])


class TelegramClient(BaseClient):
    system = "telegram"

    def __init__(self, conf: dict | None = None, *, transport: httpx.BaseTransport | None = None,
                 limiter: Limiter | None = None, timeout: float = 15.0, **kwargs):
        conf = dict(conf or settings.TELEGRAM)
        if not is_configured(conf):
            raise NotConfigured("Telegram is not configured: set TELEGRAM_BOT_TOKEN and TELEGRAM_CHAT_ID")
        self.conf = conf
        if limiter is None:
            limiter = limiter_for(f"telegram:{conf['CHAT_ID']}", units=MESSAGES_PER_MINUTE, window=60.0, parallel=1)
        # The token is part of the path: `redact` keeps it out of log lines and error messages.
        super().__init__(f"{conf['API_URL']}/bot{conf['BOT_TOKEN']}", timeout=timeout, limiter=limiter,
                         transport=transport, headers={"User-Agent": "SyncSite/0.1"}, **kwargs)

    def auth_hint(self, status: int) -> str:
        return "Telegram rejected the bot: check TELEGRAM_BOT_TOKEN and that the bot is in TELEGRAM_CHAT_ID"

    def retry_after(self, response: httpx.Response) -> float | None:
        """429 bodies carry `parameters.retry_after` (seconds)."""
        try:
            value = (response.json().get("parameters") or {}).get("retry_after")
            return float(value) if value is not None else super().retry_after(response)
        except (ValueError, AttributeError, TypeError):
            return super().retry_after(response)

    def parse_error_body(self, response: httpx.Response) -> list:
        try:
            data = response.json()
        except ValueError:
            return []
        if isinstance(data, dict) and data.get("description"):
            return [{"code": data.get("error_code"), "message": data["description"]}]
        return []

    def error_for(self, response: httpx.Response, method: str, url: str):
        error = super().error_for(response, method, url)
        error.url = redact(error.url)
        error.args = tuple(redact(str(a)) for a in error.args)
        return error

    def send_message(self, text: str, *, chat_id: str | None = None) -> dict:
        """POST sendMessage (plain text, no link previews). Sent once: a retried send could post
        the alert twice."""
        body = {"chat_id": chat_id or self.conf["CHAT_ID"], "text": text[:MESSAGE_MAX],
                "disable_web_page_preview": True}
        data = self.request("POST", "/sendMessage", json=body).json()
        return data.get("result") or {} if isinstance(data, dict) else {}
