"""Another system's SKUs -> our offers: SKU, then barcode, then a manager's mapping; never guessed."""
import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from catalog.selectors import OfferMatch, offer_match_external
from tests.factories import make_offer

pytestmark = pytest.mark.django_db


def test_equal_sku_then_barcode_then_mapping():
    a = make_offer(sku="A-1", barcodes=["4600000000011"])
    b = make_offer(sku="B-1", barcodes=["4600000000028"])
    c = make_offer(sku="C-1")
    got = offer_match_external(
        skus=["A-1", "4600000000028", "SUP-9", "SUP-C", "NOPE"],
        barcodes={"SUP-9": ["", "4600000000011"]},
        mapping={"SUP-C": c.pk, "A-1": b.pk})
    assert got == {"A-1": OfferMatch(a.pk, "sku"),            # equal SKU beats a mapping row
                   "4600000000028": OfferMatch(b.pk, "barcode"),
                   "SUP-9": OfferMatch(a.pk, "barcode"),      # by a barcode they send for it
                   "SUP-C": OfferMatch(c.pk, "mapping")}
    assert "NOPE" not in got


def test_a_barcode_two_offers_share_is_not_a_match():
    make_offer(sku="X-1", barcodes=["4600000000035"])
    make_offer(sku="X-2", barcodes=["4600000000035"])
    assert offer_match_external(skus=["4600000000035"]) == {}


def test_a_mapping_to_a_deleted_offer_is_not_a_match():
    gone = make_offer(sku="G-1")
    pk = gone.pk
    gone.delete()
    assert offer_match_external(skus=["S"], mapping={"S": pk}) == {}


def test_query_count_does_not_grow_with_the_number_of_skus():
    for i in range(30):
        make_offer(sku=f"K-{i}", barcodes=[f"46{i:011d}"])

    def queries(n):
        skus = [f"K-{i}" for i in range(n // 2)] + [f"46{i:011d}" for i in range(n // 2, n)] + ["none"]
        with CaptureQueriesContext(connection) as ctx:
            got = offer_match_external(skus=skus, mapping={"none": 10**9})
        assert len(got) == n
        return len(ctx.captured_queries)

    assert queries(4) == queries(30)
