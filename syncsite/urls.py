from django.contrib import admin
from django.urls import include, path, re_path

from stock.views import back_in_stock_unsubscribe

from .api import api_urls, endpoint_not_found
from .health import health

admin.site.site_header = "SyncSite"
admin.site.site_title = "SyncSite"
admin.site.index_title = "Catalog, stock, orders and sync health"

urlpatterns = [
    path("admin/", admin.site.urls),
    path("health/", health, name="health"),
    path("webhooks/moysklad/", include("integrations.moysklad.urls")),
    path("webhooks/marketplaces/", include("integrations.marketplace_orders.urls")),
    path("webhooks/suppliers/", include("integrations.suppliers.urls")),
    path("back-in-stock/unsubscribe/<str:token>/", back_in_stock_unsubscribe, name="back-in-stock-unsubscribe"),
    path("", include("integrations.onec.urls")),  # /webhooks/1c/stock/, /1c/exchange/
    path("api/v1/", api_urls()),
    # After the API: any other path under /api (another version, a typo, /api itself) is a JSON
    # 404, like every API error, whatever the method (a path may hold a line break).
    re_path(r"^api(?:/(?P<rest>[\s\S]*))?\Z", endpoint_not_found),
]
