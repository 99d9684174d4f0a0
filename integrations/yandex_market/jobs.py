"""Yandex Market's part of the marketplace stock push (integrations/marketplaces/): the
business-level stock update (cabinets without warehouse groups), keys offerId = our SKU."""
from __future__ import annotations

from datetime import datetime

from integrations.http.errors import RejectedError
from integrations.marketplaces.base import StockChannel
from integrations.marketplaces.types import LineResult, StockLine
from integrations.models import System

from . import client as ym_client
from .constants import STOCK_BATCH_MAX, STOCK_MAX
from .mapping import rejected_results, stock_items


class YandexMarketStockChannel(StockChannel):
    system = System.YANDEX_MARKET
    settings_name = "YANDEX_MARKET"
    batch_max = STOCK_BATCH_MAX
    ceiling = STOCK_MAX

    def configured(self) -> bool:
        return ym_client.is_configured(self.conf)

    def open(self) -> ym_client.YandexMarketClient:
        return ym_client.YandexMarketClient(self.conf)

    def key_error(self, key: str) -> str | None:
        if not key.strip():
            return "no offerId: set the key in the admin"
        return None if key == key.strip() else "offerId has leading or trailing spaces (Market trims them)"

    def push(self, client: ym_client.YandexMarketClient, lines: list[StockLine], *, at: datetime) -> list[LineResult]:
        """One call; if Market refuses it naming offers, those lines fail and the rest are sent
        once more without them (one extra call, only when the batch held a bad item)."""
        try:
            client.stocks_update(stock_items(lines, at=at))
        except RejectedError as exc:
            results, others = rejected_results(lines, exc.errors)
            if not others:
                return results
            try:
                client.stocks_update(stock_items(others, at=at))
            except RejectedError as again:
                failed, rest = rejected_results(others, again.errors)
                return results + failed + [LineResult.failed(line, "not sent: Market refused the batch twice",
                                                             retry_later=True) for line in rest]
            return results + [LineResult.accepted(line) for line in others]
        return [LineResult.accepted(line) for line in lines]
