"""Ozon's part of the marketplace stock push (integrations/marketplaces/): limits, one batch,
per-item answers. Keys default to offer_id = our SKU."""
from __future__ import annotations

from datetime import datetime

from integrations.marketplaces.base import StockChannel
from integrations.marketplaces.types import LineResult, StockLine
from integrations.models import System

from . import client as ozon_client
from .constants import STOCK_BATCH_MAX, STOCK_MAX, STOCK_PAIR_INTERVAL
from .mapping import stock_items, stock_results


class OzonStockChannel(StockChannel):
    system = System.OZON
    settings_name = "OZON"
    batch_max = STOCK_BATCH_MAX
    ceiling = STOCK_MAX
    pair_interval = STOCK_PAIR_INTERVAL

    def configured(self) -> bool:
        return ozon_client.is_configured(self.conf)

    def open(self) -> ozon_client.OzonClient:
        return ozon_client.OzonClient(self.conf)

    def push(self, client: ozon_client.OzonClient, lines: list[StockLine], *, at: datetime) -> list[LineResult]:
        return stock_results(lines, client.stocks_update(stock_items(lines)))
