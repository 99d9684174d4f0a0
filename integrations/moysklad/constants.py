"""MoySklad facts the code relies on (see ../shared/docs/api/moysklad.md)."""
from datetime import timedelta
from zoneinfo import ZoneInfo

MSK = ZoneInfo("Europe/Moscow")
PAGE_MAX = 1000            # entity lists and extended reports
PAGE_MAX_EXPANDED = 100    # expand/fields are silently ignored above this
ARRAY_MAX = 1000           # elements in one array (positions, batch POST)
CHANGED_SINCE_MAX_HOURS = 24
# changedSince must not be older than 24 h when MoySklad receives it: keep this much in hand.
CHANGED_SINCE_MARGIN = timedelta(minutes=5)
HEAVY_REPORT_WEIGHT = 5    # GET report/stock/all and report/stock/bystore (paged)
HEAVY_REPORTS = ("/report/stock/all", "/report/stock/bystore")
# Who owns which field of a product (site-owned fields are never written by sync).
OWNED_BY_MOYSKLAD = ("price", "article", "code", "barcodes", "archived", "category", "characteristics", "vat")
OWNED_BY_SITE = ("slug", "seo_title", "seo_description", "images")
CONTESTED = ("name", "description")
UI_PRODUCT_URL = "https://online.moysklad.ru/app/#good/edit?id={id}"
