"""GET /api/v1/products and /api/v1/products/{sku}: shape, paging, deltas, errors, query count."""
from datetime import datetime, timedelta, timezone as dt_timezone
from decimal import Decimal

import pytest

from catalog.api import encode_cursor
from catalog.models import Product
from catalog.selectors import FeedPosition
from stock.models import StockLevel
from tests.factories import make_offer, make_product, make_stock, make_warehouse, set_updated_at

pytestmark = pytest.mark.django_db

PRODUCTS = "/api/v1/products"
T0 = datetime(2026, 11, 20, 7, 0, tzinfo=dt_timezone.utc)


def _parse(value: str) -> datetime:
    return datetime.fromisoformat(value)


def _walk(api, **params) -> list[dict]:
    """Follow `next` to the end; returns every item in order."""
    items, cursor, pages = [], None, 0
    while True:
        query = {**params, **({"cursor": cursor} if cursor else {})}
        response = api.get(PRODUCTS, query)
        assert response.status_code == 200, response.content
        body = response.json()
        items += body["items"]
        pages += 1
        assert pages < 100
        cursor = body["next"]
        if cursor is None:
            return items


# -- one product ---------------------------------------------------------------------------------
def test_product_shape_with_per_warehouse_availability(api):
    main, shop = make_warehouse(code="main", name="Main"), make_warehouse(code="shop", name="Shop")
    offer = make_offer(sku="A-1", name="Kettle", price=Decimal("1499"))
    make_stock(offer=offer, warehouse=main, stock=7, reserve=2)
    make_stock(offer=offer, warehouse=shop, stock=3)

    response = api.get(f"{PRODUCTS}/A-1")

    assert response.status_code == 200
    body = response.json()
    assert body["sku"] == "A-1"
    assert body["name"] == "Kettle"
    assert body["price"] == "1499.00"
    assert body["currency"] == "RUB"
    assert body["available"] == 8
    assert body["warehouses"] == [{"code": "main", "name": "Main", "available": 5},
                                  {"code": "shop", "name": "Shop", "available": 3}]
    assert body["archived"] is False
    moment = _parse(body["updated_at"])
    assert moment.utcoffset() is not None  # ISO 8601 with an offset


def test_product_without_price_or_stock(api):
    make_offer(sku="NOPRICE", price=None)
    body = api.get(f"{PRODUCTS}/NOPRICE").json()
    assert body["price"] is None
    assert body["available"] == 0
    assert body["warehouses"] == []


def test_fractional_stock_is_a_number(api):
    make_stock(offer=make_offer(sku="ROPE"), stock="2.5")
    body = api.get(f"{PRODUCTS}/ROPE").json()
    assert body["available"] == 2.5
    assert body["warehouses"][0]["available"] == 2.5


def test_archived_warehouse_does_not_count(api):
    offer = make_offer(sku="W")
    make_stock(offer=offer, warehouse=make_warehouse(code="live"), stock=4)
    make_stock(offer=offer, warehouse=make_warehouse(code="gone", archived=True), stock=9)
    body = api.get(f"{PRODUCTS}/W").json()
    assert body["available"] == 4
    assert [w["code"] for w in body["warehouses"]] == ["live"]


def test_archived_product_or_offer_is_listed_as_archived(api):
    make_offer(sku="OLD-PRODUCT", product=make_product(archived=True))
    make_offer(sku="OLD-OFFER", archived=True)
    make_offer(sku="LIVE")
    items = {i["sku"]: i for i in api.get(PRODUCTS).json()["items"]}
    assert items["OLD-PRODUCT"]["archived"] is True
    assert items["OLD-OFFER"]["archived"] is True
    assert items["LIVE"]["archived"] is False


def test_name_is_the_products_for_a_plain_offer_and_the_variants_own(api):
    product = make_product(name="Shirt (edited on the site)")
    make_offer(product=product, sku="PLAIN", name="Shirt")
    make_offer(product=product, sku="RED-XL", name="Shirt (red, XL)", is_variant=True)
    assert api.get(f"{PRODUCTS}/PLAIN").json()["name"] == "Shirt (edited on the site)"
    assert api.get(f"{PRODUCTS}/RED-XL").json()["name"] == "Shirt (red, XL)"


def test_unknown_sku_is_404(api):
    response = api.get(f"{PRODUCTS}/NOPE")
    assert response.status_code == 404
    assert response.json()["error"] == "unknown_sku"


def test_sku_with_a_slash(api):
    make_offer(sku="AB/12")
    response = api.get(f"{PRODUCTS}/AB%2F12")
    assert response.status_code == 200
    assert response.json()["sku"] == "AB/12"


# -- paging --------------------------------------------------------------------------------------
def test_cursor_walks_250_offers_without_duplicates_or_gaps(api):
    offers = [make_offer() for _ in range(250)]
    # Many ties on updated_at: the id half of the cursor must carry the order.
    for i, offer in enumerate(offers):
        set_updated_at(offer, T0 + timedelta(seconds=i // 40))
        set_updated_at(offer.product, T0 - timedelta(days=1))

    first = api.get(PRODUCTS).json()
    assert len(first["items"]) == 100 and first["next"]
    items = _walk(api)

    skus = [i["sku"] for i in items]
    assert len(skus) == 250
    assert set(skus) == {o.sku for o in offers}
    stamps = [_parse(i["updated_at"]) for i in items]
    assert stamps == sorted(stamps)


def test_limit_controls_the_page_size_and_the_last_page_has_no_next(api):
    for _ in range(5):
        make_offer()
    body = api.get(PRODUCTS, {"limit": 2}).json()
    assert len(body["items"]) == 2 and body["next"]
    assert len(_walk(api, limit=5)) == 5
    body = api.get(PRODUCTS, {"limit": 5}).json()
    assert len(body["items"]) == 5 and body["next"] is None


def test_an_offer_changed_mid_walk_is_served_again_at_the_end(api):
    offers = [make_offer() for _ in range(6)]
    for i, offer in enumerate(offers):
        set_updated_at(offer, T0 + timedelta(seconds=i))
    Product.objects.update(updated_at=T0 - timedelta(days=1))
    first = api.get(PRODUCTS, {"limit": 3}).json()
    served = [i["sku"] for i in first["items"]]
    set_updated_at(offers[0], T0 + timedelta(hours=1))  # already served, changes again
    rest = _walk_from(api, first["next"], limit=3)
    assert [i["sku"] for i in rest][-1] == offers[0].sku
    assert set(served) | {i["sku"] for i in rest} == {o.sku for o in offers}


def _walk_from(api, cursor, **params):
    items = []
    while cursor:
        body = api.get(PRODUCTS, {**params, "cursor": cursor}).json()
        items += body["items"]
        cursor = body["next"]
    return items


def test_page_query_count_is_constant(api, django_assert_max_num_queries):
    warehouses = [make_warehouse() for _ in range(3)]
    for _ in range(120):
        offer = make_offer()
        for wh in warehouses:
            make_stock(offer=offer, warehouse=wh, stock=1)
    with django_assert_max_num_queries(2):
        body = api.get(PRODUCTS, {"limit": 100}).json()
    assert len(body["items"]) == 100
    assert all(len(i["warehouses"]) == 3 for i in body["items"])
    with django_assert_max_num_queries(2):
        assert api.get(PRODUCTS, {"cursor": body["next"], "limit": 500}).status_code == 200
    with django_assert_max_num_queries(2):
        assert api.get(f"{PRODUCTS}/{body['items'][0]['sku']}").status_code == 200


# -- deltas --------------------------------------------------------------------------------------
def test_updated_since_includes_offer_product_and_stock_changes(api):
    old = T0 - timedelta(days=2)
    since = T0 - timedelta(hours=1)
    untouched, price_changed, product_renamed, stock_changed = (make_offer() for _ in range(4))
    wh = make_warehouse()
    level = make_stock(offer=stock_changed, warehouse=wh, stock=1)
    make_stock(offer=untouched, warehouse=wh, stock=1)
    for offer in (untouched, price_changed, product_renamed, stock_changed):
        set_updated_at(offer, old)
        set_updated_at(offer.product, old)
    StockLevel.objects.update(updated_at=old)
    set_updated_at(price_changed, T0)
    set_updated_at(product_renamed.product, T0 + timedelta(seconds=1))
    set_updated_at(level, T0 + timedelta(seconds=2))

    items = _walk(api, updated_since=since.isoformat())

    assert [i["sku"] for i in items] == [price_changed.sku, product_renamed.sku, stock_changed.sku]
    assert _parse(items[2]["updated_at"]) == T0 + timedelta(seconds=2)  # the stock row's time
    assert items[2]["available"] == 1


def test_updated_since_is_inclusive_and_accepts_z_and_offsets(api):
    offer = make_offer()
    set_updated_at(offer, T0)
    set_updated_at(offer.product, T0 - timedelta(days=1))
    for value in ("2026-11-20T07:00:00Z", "2026-11-20T10:00:00+03:00", "2026-11-20T10:00:00 03:00"):
        assert [i["sku"] for i in api.get(PRODUCTS, {"updated_since": value}).json()["items"]] == [offer.sku], value
    assert api.get(PRODUCTS, {"updated_since": "2026-11-20T07:00:01Z"}).json()["items"] == []


def test_stock_change_moves_the_offer_to_the_end_of_the_feed(api):
    a, b = make_offer(), make_offer()
    set_updated_at(a, T0)
    set_updated_at(b, T0 + timedelta(seconds=1))
    Product.objects.update(updated_at=T0 - timedelta(days=1))
    make_stock(offer=a, stock=3)  # now: newer than b
    assert [i["sku"] for i in api.get(PRODUCTS).json()["items"]] == [b.sku, a.sku]


# -- validation ----------------------------------------------------------------------------------
@pytest.mark.parametrize("cursor", ["garbage", "%%%", "djEuMTIz", encode_cursor(FeedPosition(T0, 1))[:-3] + "!!!"])
def test_malformed_cursor_is_400(api, cursor):
    response = api.get(PRODUCTS, {"cursor": cursor})
    assert response.status_code == 400
    body = response.json()
    assert body["error"] == "invalid"
    assert body["detail"][0]["loc"] == ["query", "cursor"]


@pytest.mark.parametrize("value", ["yesterday", "2026-13-01T00:00:00Z", "2026-11-20T10:00:00", "2026-11-20", "1700000000"])
def test_bad_updated_since_is_400(api, value):
    response = api.get(PRODUCTS, {"updated_since": value})
    assert response.status_code == 400, value
    body = response.json()
    assert body["error"] == "invalid"
    assert body["detail"][0]["loc"] == ["query", "updated_since"]


@pytest.mark.parametrize("limit", ["0", "501", "ten"])
def test_bad_limit_is_400(api, limit):
    response = api.get(PRODUCTS, {"limit": limit})
    assert response.status_code == 400
    assert response.json()["error"] == "invalid"


def test_cursor_round_trips_microseconds():
    from catalog.api import decode_cursor

    position = FeedPosition(datetime(2026, 11, 20, 7, 0, 0, 123456, tzinfo=dt_timezone.utc), 42)
    assert decode_cursor(encode_cursor(position)) == position
