"""1C's two doors, the trailing slash optional: 1C's exchange settings are typed by hand."""
from django.urls import re_path

from .exchange import onec_exchange
from .webhooks import onec_stock_webhook

urlpatterns = [
    re_path(r"^webhooks/1c/stock/?\Z", onec_stock_webhook, name="onec-stock-webhook"),
    re_path(r"^1c/exchange/?\Z", onec_exchange, name="onec-exchange"),
]
