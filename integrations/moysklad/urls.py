from django.urls import path

from .webhooks import moysklad_webhook

urlpatterns = [
    path("<str:token>/", moysklad_webhook, name="moysklad-webhook"),
]
