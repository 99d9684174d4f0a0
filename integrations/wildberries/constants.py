"""Wildberries seller API facts the stock push relies on (../shared/docs/api/wildberries.md,
docs/api-notes.md)."""

STOCKS_PATH = "/api/v3/stocks/{warehouse_id}"
CARDS_LIST = "/content/v2/get/cards/list"

#: sizes (chrtId) in one stock update
STOCK_BATCH_MAX = 1000
#: `amount` 0…100,000 (UploadDataLimit above)
STOCK_MAX = 100_000
#: marketplace group budget: 300 a minute, one every 200 ms, burst 20 — modelled as 20 per 4 s
STOCK_BURST = 20
STOCK_BURST_WINDOW = 4.0
#: any 4xx answer costs this many requests of the budget
ERROR_COST = 10
MAX_PARALLEL = 4

#: content cards list: 100 a minute (burst 5), at most 100 cards a page
CARDS_PAGE_MAX = 100
CARDS_BURST = 5
CARDS_BURST_WINDOW = 3.0

#: 409 codes that mean "not now" (the warehouse is being processed): retried, not an error
RETRY_LATER_CODES = frozenset({"StoreIsProcessing"})
