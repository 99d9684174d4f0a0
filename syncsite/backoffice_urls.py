"""The back office's own pages under /admin/backoffice/ (the dashboard itself is the admin index,
templates/admin/index.html). Every view requires a staff login, like the rest of the admin."""
from django.contrib import admin
from django.urls import path

from integrations import backoffice_views as views

app_name = "backoffice"

urlpatterns = [
    path("sync/", admin.site.admin_view(views.sync_now), name="sync"),
    path("progress/", admin.site.admin_view(views.progress), name="progress"),
    path("work/", admin.site.admin_view(views.worklists_view), name="worklists"),
    path("sku/", admin.site.admin_view(views.sku_find), name="sku_find"),
    path("sku/<path:sku>/", admin.site.admin_view(views.sku_page), name="sku"),
]
