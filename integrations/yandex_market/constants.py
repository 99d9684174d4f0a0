"""Yandex Market Partner API facts the stock push relies on (../shared/docs/api/yandex-market.md,
docs/api-notes.md)."""

#: business-level stock for cabinets without warehouse groups (added 2026-07-29)
STOCKS_UPDATE = "/v3/businesses/{business_id}/offers/stocks/update"

#: (sku, partnerWarehouseId) pairs in one update
STOCK_BATCH_MAX = 2000
#: stock updates a minute (the v3 method's resource limit)
STOCK_CALLS_PER_MINUTE = 50
#: simultaneous requests per business; one more gets HTTP 420
MAX_PARALLEL = 4
#: `count` 0…2,000,000,000
STOCK_MAX = 2_000_000_000
#: request bodies above 512 KB are refused (2,000 items are about 200 KB)
BODY_MAX_BYTES = 512 * 1024
