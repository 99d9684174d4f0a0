from django.contrib import admin
from django.urls import include, path, re_path
from django.utils.translation import gettext_lazy as _

from stock.views import back_in_stock_unsubscribe

from .api import api_urls, endpoint_not_found
from .health import health

admin.site.site_header = "SyncSite"
admin.site.site_title = "SyncSite"
admin.site.index_title = _("Catalog, stock, orders and sync health")
# No storefront is served here: the header's "View site" would lead to a 404, so it is hidden.
admin.site.site_url = None
# The side menu repeats the home page's app list and costs list pages 300 px: off, so every list
# (the channel offers' Status and Error columns included) fits a 1280 px window.
admin.site.enable_nav_sidebar = False

urlpatterns = [
    # Before the admin: the back office's own pages (dashboard data, work lists, product page).
    path("admin/backoffice/", include("syncsite.backoffice_urls")),
    path("admin/", admin.site.urls),
    # The admin header's language switch posts here (django.views.i18n.set_language).
    path("i18n/", include("django.conf.urls.i18n")),
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
