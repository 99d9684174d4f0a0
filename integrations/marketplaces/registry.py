"""The marketplaces we push stock to, in push order. Plain objects, looked up by system value."""
from __future__ import annotations

from functools import lru_cache

from .base import StockChannel


@lru_cache(maxsize=1)
def channels() -> tuple[StockChannel, ...]:
    from integrations.ozon.jobs import OzonStockChannel
    from integrations.wildberries.jobs import WildberriesStockChannel
    from integrations.yandex_market.jobs import YandexMarketStockChannel

    return (OzonStockChannel(), WildberriesStockChannel(), YandexMarketStockChannel())


def get(system: str) -> StockChannel:
    for adapter in channels():
        if adapter.system == system:
            return adapter
    raise KeyError(f"no stock channel for {system!r}")


def any_configured() -> bool:
    return any(adapter.configured() for adapter in channels())
