from django.urls import path

from .webhooks import ozon_push, ym_push

urlpatterns = [
    path("<str:token>/ozon/", ozon_push, name="ozon-push"),
    path("<str:token>/ym/notification", ym_push, name="ym-push"),
]
