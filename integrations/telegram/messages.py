"""Messages to the manager's Telegram chat (TELEGRAM_BOT_TOKEN, TELEGRAM_CHAT_ID)."""
from __future__ import annotations

import httpx

from .client import TelegramClient


def send_manager_message(text: str, *, transport: httpx.BaseTransport | None = None) -> dict:
    """Send `text` to TELEGRAM_CHAT_ID. Raises NotConfigured without a bot, UpstreamError when
    Telegram refuses; the caller decides whether to try again (a send is never retried here: it
    could post twice)."""
    with TelegramClient(transport=transport) as client:
        return client.send_message(text)
