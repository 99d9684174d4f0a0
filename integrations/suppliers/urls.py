from django.urls import path

from .webhooks import supplier_stock_webhook

urlpatterns = [
    path("<str:slug>/stock/", supplier_stock_webhook, name="supplier-stock-webhook"),
]
