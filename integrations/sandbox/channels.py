"""The marketplace emulators in the sandbox: Ozon at ``/ozon``, Wildberries at ``/wb`` and
``/wb-content``, Yandex Market at ``/ym``. They share the MoySklad emulator's catalog, so the
offers (SKUs, barcodes, WB sizes) they list are the ones SyncSite imports."""
from __future__ import annotations

from typing import Any

from .catalog_gen import Catalog
from .common import SandboxApp
from .ozon import OzonEmulator
from .wildberries import WildberriesContentEmulator, WildberriesEmulator
from .yandex_market import YandexMarketEmulator

#: what `make run` / tests point the settings at (see `settings_for`)
OZON_CLIENT_ID, OZON_API_KEY, OZON_WAREHOUSE = "sandbox-client", "sandbox-ozon-key", "22222222222000"
WB_TOKEN, WB_WAREHOUSE = "sandbox-wb-token", "658434"
YM_API_KEY, YM_BUSINESS, YM_CAMPAIGN, YM_WAREHOUSE = "sandbox-ym-key", "10000001", "20000001", "123456"


def mount_marketplaces(app: SandboxApp, catalog: Catalog, *, rate_limit: bool = True,
                       latency_ms: float = 0.0) -> dict[str, Any]:
    emulators = {
        "ozon": OzonEmulator(catalog, client_id=OZON_CLIENT_ID, api_key=OZON_API_KEY, warehouses=(OZON_WAREHOUSE,),
                             rate_limit=rate_limit, latency_ms=latency_ms),
        "wb": WildberriesEmulator(catalog, token=WB_TOKEN, warehouses=(WB_WAREHOUSE,), rate_limit=rate_limit,
                                  latency_ms=latency_ms),
        "wb-content": WildberriesContentEmulator(catalog, token=WB_TOKEN, rate_limit=rate_limit,
                                                 latency_ms=latency_ms),
        "ym": YandexMarketEmulator(catalog, api_key=YM_API_KEY, business_id=YM_BUSINESS, warehouses=(YM_WAREHOUSE,),
                                   rate_limit=rate_limit, latency_ms=latency_ms),
    }
    # Orders, status actions and returns (the *_orders.py modules).
    from . import ozon_orders, wildberries_orders, yandex_market_orders
    from .marketplace_orders import start_buyers_from_env

    ozon_orders.install(emulators["ozon"])
    wildberries_orders.install(emulators["wb"])
    yandex_market_orders.install(emulators["ym"], campaign_id=YM_CAMPAIGN)
    emulators["wb-returns"] = wildberries_orders.WildberriesReturnsEmulator(
        catalog, token=WB_TOKEN, marketplace=emulators["wb"], rate_limit=rate_limit, latency_ms=latency_ms)
    for name, emulator in emulators.items():
        app.mount(emulator, name)
    start_buyers_from_env({k: emulators[k] for k in ("ozon", "wb", "ym")})
    return emulators


#: a marketplace counts as really configured when any of these is set (then `make run` leaves it alone)
_CREDENTIALS = {"OZON": ("OZON_CLIENT_ID", "OZON_API_KEY"), "WB": ("WB_TOKEN",), "YM": ("YM_API_KEY",)}


def settings_for(url: str, configured: dict | None = None) -> dict[str, str]:
    """Environment variables that point SyncSite's three marketplaces at a sandbox at `url`,
    leaving out any marketplace with real credentials in `configured` (the environment)."""
    real = {prefix for prefix, names in _CREDENTIALS.items() if any((configured or {}).get(n) for n in names)}
    return {key: value for key, value in _all_settings(url).items() if key.split("_", 1)[0] not in real}


def point_settings(settings, url: str) -> None:
    """Point a live Django `settings` (a test's, a bench child's) at the sandbox's three
    marketplaces at `url`: the same values `settings_for` gives as environment variables."""
    env = _all_settings(url)
    settings.OZON = {**settings.OZON, "BASE_URL": env["OZON_BASE_URL"], "CLIENT_ID": env["OZON_CLIENT_ID"],
                     "API_KEY": env["OZON_API_KEY"], "WAREHOUSE_ID": env["OZON_WAREHOUSE_ID"]}
    settings.WILDBERRIES = {**settings.WILDBERRIES, "BASE_URL": env["WB_BASE_URL"], "CONTENT_URL": env["WB_CONTENT_URL"],
                            "RETURNS_URL": env["WB_RETURNS_URL"], "TOKEN": env["WB_TOKEN"],
                            "WAREHOUSE_ID": env["WB_WAREHOUSE_ID"]}
    settings.YANDEX_MARKET = {**settings.YANDEX_MARKET, "BASE_URL": env["YM_BASE_URL"], "API_KEY": env["YM_API_KEY"],
                              "BUSINESS_ID": env["YM_BUSINESS_ID"], "CAMPAIGN_ID": env["YM_CAMPAIGN_ID"],
                              "WAREHOUSE_ID": env["YM_WAREHOUSE_ID"]}


def _all_settings(url: str) -> dict[str, str]:
    return {
        "OZON_BASE_URL": f"{url}/ozon", "OZON_CLIENT_ID": OZON_CLIENT_ID, "OZON_API_KEY": OZON_API_KEY,
        "OZON_WAREHOUSE_ID": OZON_WAREHOUSE,
        "WB_BASE_URL": f"{url}/wb", "WB_CONTENT_URL": f"{url}/wb-content", "WB_RETURNS_URL": f"{url}/wb-returns",
        "WB_TOKEN": WB_TOKEN,
        "WB_WAREHOUSE_ID": WB_WAREHOUSE,
        "YM_BASE_URL": f"{url}/ym", "YM_API_KEY": YM_API_KEY, "YM_BUSINESS_ID": YM_BUSINESS,
        "YM_CAMPAIGN_ID": YM_CAMPAIGN, "YM_WAREHOUSE_ID": YM_WAREHOUSE,
    }


def describe(url: str, emulators: dict[str, Any]) -> list[str]:
    lines = ["", "Marketplaces (stock, orders, returns):"]
    for key, value in settings_for(url).items():
        lines.append(f"  {key}={value}")
    lines.append(f"  control: {url}/_sandbox/<ozon|wb|wb-content|wb-returns|ym>/  (stocks, unlisted, orders, returns, stats, "
                 "faults, config)")
    return lines
