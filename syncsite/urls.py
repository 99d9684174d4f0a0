from django.contrib import admin
from django.urls import path

from .health import health

admin.site.site_header = "SyncSite"
admin.site.site_title = "SyncSite"
admin.site.index_title = "Catalog, stock, orders and sync health"

urlpatterns = [
    path("admin/", admin.site.urls),
    path("health/", health, name="health"),
]
