"""The one page a customer reaches from an e-mail: the back-in-stock unsubscribe link."""
from django.http import HttpRequest, HttpResponse
from django.utils.html import escape
from django.views.decorators.http import require_GET

from .backinstock import unsubscribe


@require_GET
def back_in_stock_unsubscribe(request: HttpRequest, token: str) -> HttpResponse:
    unsubscribe(token=token[:64])
    # The same answer whether or not the token was known: nothing to learn by guessing.
    return HttpResponse(f"<!doctype html><meta charset=utf-8><title>{escape('Подписка отменена')}</title>"
                        "<p>Вы отписались: писем о поступлении этого товара больше не будет.</p>",
                        content_type="text/html; charset=utf-8")
