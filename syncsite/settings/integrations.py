"""One block per upstream system. A system with no credentials is off ("not configured")."""
from syncsite.env import env

MOYSKLAD = {
    "BASE_URL": env.str("MOYSKLAD_BASE_URL", default="https://api.moysklad.ru/api/remap/1.2").rstrip("/"),
    "TOKEN": env.str("MOYSKLAD_TOKEN", default=""),
    "LOGIN": env.str("MOYSKLAD_LOGIN", default=""),
    "PASSWORD": env.str("MOYSKLAD_PASSWORD", default=""),
    "ORGANIZATION_ID": env.str("MOYSKLAD_ORGANIZATION_ID", default=""),
    "STORE_ID": env.str("MOYSKLAD_STORE_ID", default=""),
    "PRICE_TYPE": env.str("MOYSKLAD_PRICE_TYPE", default=""),
    "WEBHOOK_TOKEN": env.str("MOYSKLAD_WEBHOOK_TOKEN", default=""),
    # Weighted budget: 45 units per 3 s; a request costs REQUEST_WEIGHT units (user token: 4
    # from 1 Dec 2026; a published solution token: 1). Stock/all and stock/bystore cost 5.
    "BUDGET_UNITS": env.int("MOYSKLAD_BUDGET_UNITS", default=45),
    "BUDGET_WINDOW": env.float("MOYSKLAD_BUDGET_WINDOW", default=3.0),
    "REQUEST_WEIGHT": env.int("MOYSKLAD_REQUEST_WEIGHT", default=4),
    "MAX_PARALLEL": env.int("MOYSKLAD_MAX_PARALLEL", default=5),
    "TIMEOUT": env.float("MOYSKLAD_TIMEOUT", default=60.0),
    # Delta windows re-read this many seconds before the last successful run.
    "OVERLAP_SECONDS": env.int("MOYSKLAD_OVERLAP_SECONDS", default=120),
    "PAGE_SIZE": env.int("MOYSKLAD_PAGE_SIZE", default=1000),
}

# MoySklad requests one webhook notification may cause (coalesced, bulk reads need ~10 for 1,000
# events); events past the cap are left to the scheduled polls.
MOYSKLAD_EVENT_REQUESTS_MAX = env.int("MOYSKLAD_EVENT_REQUESTS_MAX", default=25)

OZON = {
    "BASE_URL": env.str("OZON_BASE_URL", default="https://api-seller.ozon.ru").rstrip("/"),
    "CLIENT_ID": env.str("OZON_CLIENT_ID", default=""),
    "API_KEY": env.str("OZON_API_KEY", default=""),
    "WAREHOUSE_ID": env.str("OZON_WAREHOUSE_ID", default=""),
}

WILDBERRIES = {
    "BASE_URL": env.str("WB_BASE_URL", default="https://marketplace-api.wildberries.ru").rstrip("/"),
    "CONTENT_URL": env.str("WB_CONTENT_URL", default="https://content-api.wildberries.ru").rstrip("/"),
    "RETURNS_URL": env.str("WB_RETURNS_URL", default="https://returns-api.wildberries.ru").rstrip("/"),
    "TOKEN": env.str("WB_TOKEN", default=""),
    "WAREHOUSE_ID": env.str("WB_WAREHOUSE_ID", default=""),
}

YANDEX_MARKET = {
    "BASE_URL": env.str("YM_BASE_URL", default="https://api.partner.market.yandex.ru").rstrip("/"),
    "API_KEY": env.str("YM_API_KEY", default=""),
    "BUSINESS_ID": env.str("YM_BUSINESS_ID", default=""),
    "CAMPAIGN_ID": env.str("YM_CAMPAIGN_ID", default=""),
    "WAREHOUSE_ID": env.str("YM_WAREHOUSE_ID", default=""),
}

ONEC = {
    "BASE_URL": env.str("ONEC_BASE_URL", default="").rstrip("/"),
    "USER": env.str("ONEC_USER", default=""),
    "PASSWORD": env.str("ONEC_PASSWORD", default=""),
    "WEBHOOK_TOKEN": env.str("ONEC_WEBHOOK_TOKEN", default=""),
    "TIMEOUT": env.float("ONEC_TIMEOUT", default=60.0),
    # Delta reads ask 1C for changes since the last successful run minus this many seconds.
    "OVERLAP_SECONDS": env.int("ONEC_OVERLAP_SECONDS", default=300),
    # CommerceML exchange (1C's "Обмен с сайтом"): answers 401 until both are set.
    "EXCHANGE_LOGIN": env.str("ONEC_EXCHANGE_LOGIN", default=""),
    "EXCHANGE_PASSWORD": env.str("ONEC_EXCHANGE_PASSWORD", default=""),
    # Bytes per `file` request 1C is told to send (init's file_limit), and the most one file may total.
    "EXCHANGE_FILE_LIMIT": env.int("ONEC_EXCHANGE_FILE_LIMIT", default=8 * 1024 * 1024),
    "EXCHANGE_MAX_FILE": env.int("ONEC_EXCHANGE_MAX_FILE", default=1024 * 1024 * 1024),
    # Where uploads are kept while a session lasts (one folder per session).
    "EXCHANGE_DIR": env.str("ONEC_EXCHANGE_DIR", default=""),
}

# Marketplace stock (Ozon, Wildberries, Yandex Market): shared behaviour; API limits live in each
# integrations/<marketplace>/constants.py, per-channel buffers and warehouses in the admin.
MARKETPLACES = {
    # A stock change waits this long so a burst leaves as a few full batches (goal: p95 < 10 s).
    "DEBOUNCE_SECONDS": env.float("MARKETPLACE_DEBOUNCE_SECONDS", default=5.0),
    # Secret path segment of the Ozon / Yandex Market push-notification URLs (unset: they answer 404).
    "PUSH_TOKEN": env.str("MARKETPLACE_PUSH_TOKEN", default=""),
    # A quantity above this is a data error: refused and reported, never published.
    "SANITY_MAX": env.int("MARKETPLACE_STOCK_SANITY_MAX", default=100_000),
    # Alert when a marketplace shows 0 this long while we have stock to sell there.
    "ZERO_ALERT_HOURS": env.float("MARKETPLACE_ZERO_ALERT_HOURS", default=2.0),
    # How often a delta run re-reads changed Wildberries cards (new sizes -> chrtID keys).
    "WB_CARDS_REFRESH_SECONDS": env.int("WB_CARDS_REFRESH_SECONDS", default=600),
    # Bench only: the clients' rate-limit windows are multiplied per API, e.g.
    # "ozon=0.1,wildberries-content=0.01" (a tenth of a minute), so a long push can be measured
    # against emulators scaled the same way. Unset in production (every factor 1).
    "RATE_WINDOW_SCALE": {k.strip(): float(v) for k, v in (
        part.split("=", 1) for part in env.str("MARKETPLACE_RATE_WINDOW_SCALE", default="").split(",")
        if "=" in part)},
}

TELEGRAM = {
    "API_URL": env.str("TELEGRAM_API_URL", default="https://api.telegram.org").rstrip("/"),
    "BOT_TOKEN": env.str("TELEGRAM_BOT_TOKEN", default=""),
    "CHAT_ID": env.str("TELEGRAM_CHAT_ID", default=""),
}

# Dropshipping suppliers (integrations/suppliers): reads, the live add-to-cart check, outbound safety.
SUPPLIER_TIMEOUT = env.float("SUPPLIER_TIMEOUT", default=120.0)   # one API page or one feed download
SUPPLIER_DELTA_OVERLAP_SECONDS = env.int("SUPPLIER_DELTA_OVERLAP_SECONDS", default=120)
# URLs taken from data may not reach loopback, private, link-local or metadata addresses unless on.
OUTBOUND_ALLOW_PRIVATE = env.bool("OUTBOUND_ALLOW_PRIVATE", default=False)
CART_CHECK_STALE_SECONDS = env.int("CART_CHECK_STALE_SECONDS", default=900)
CART_CHECK_TIMEOUT = env.float("CART_CHECK_TIMEOUT", default=2.0)
CART_CHECK_ON_FAILURE = env.str("CART_CHECK_ON_FAILURE", default="stale")   # stale | refuse
# A supplier failing this many live checks in a row is skipped for this many seconds.
CART_CHECK_BREAKER_FAILURES = env.int("CART_CHECK_BREAKER_FAILURES", default=3)
CART_CHECK_BREAKER_SECONDS = env.float("CART_CHECK_BREAKER_SECONDS", default=30.0)
