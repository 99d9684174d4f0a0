"""Ozon Seller API facts the stock push relies on (../shared/docs/api/ozon.md, docs/api-notes.md)."""

STOCKS_UPDATE = "/v2/products/stocks"

#: product–warehouse pairs in one stock update
STOCK_BATCH_MAX = 100
#: stock updates a minute per seller account (on top of the global 50 requests a second)
STOCK_CALLS_PER_MINUTE = 80
#: one (offer, warehouse) pair may be updated at most once in this many seconds
STOCK_PAIR_INTERVAL = 30.0
#: `STOCK_TOO_BIG`: "set a quantity less than a million"
STOCK_MAX = 999_999
#: requests in flight at once (Ozon publishes no cap; the stock budget is the real limit)
MAX_PARALLEL = 4

#: per-item codes that mean "not now" (the pair's 30 s rule): the item is retried, not an error
RETRY_LATER_CODES = frozenset({"TOO_MANY_REQUESTS"})
RETRY_LATER_MESSAGES = ("too frequently",)
#: per-item codes that mean Ozon does not know the offer under this key
UNKNOWN_OFFER_CODES = frozenset({"offer_id_not_found", "NOT_FOUND_ERROR", "product_is_not_created"})
