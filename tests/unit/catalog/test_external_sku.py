"""Another system's SKUs: equal SKU, a barcode of ours, a manager's mapping row; the rest listed as
unmapped with how often they came, never guessed."""
import pytest

from catalog.models import Barcode, ExternalSku
from catalog.services import external_skus_match
from tests.factories import make_offer

pytestmark = pytest.mark.django_db


def test_skus_match_by_sku_then_barcode_then_a_managers_row_and_the_rest_are_listed():
    by_sku, by_code, by_row = make_offer(sku="A-1"), make_offer(sku="B-1"), make_offer(sku="C-1")
    Barcode.objects.create(offer=by_code, value="4600000000017")
    ExternalSku.objects.create(source="supplier:acme", sku="their-c", offer=by_row)
    ExternalSku.objects.create(source="supplier:other", sku="their-x", offer=by_row)  # another source's row

    got = external_skus_match(source="supplier:acme", skus=["A-1", "x-code", "their-c", "their-x", "nope"],
                              barcodes={"x-code": ["4600000000017"]}, names={"nope": "Unknown thing"})

    assert got == {"A-1": by_sku.pk, "x-code": by_code.pk, "their-c": by_row.pk}
    unmapped = ExternalSku.objects.filter(source="supplier:acme", offer__isnull=True)
    assert sorted(unmapped.values_list("sku", "name", "seen_count")) == [
        ("nope", "Unknown thing", 1), ("their-x", "", 1)]

    external_skus_match(source="supplier:acme", skus=["nope"])
    assert ExternalSku.objects.get(source="supplier:acme", sku="nope").seen_count == 2


def test_a_manager_mapping_an_unmapped_sku_makes_the_next_read_match_it():
    offer = make_offer(sku="OURS")
    assert external_skus_match(source="1c", skus=["THEIRS"]) == {}
    ExternalSku.objects.filter(source="1c", sku="THEIRS").update(offer=offer)
    assert external_skus_match(source="1c", skus=["THEIRS"]) == {"THEIRS": offer.pk}


def test_the_unmapped_list_is_an_admin_work_list(admin_client):
    ExternalSku.objects.create(source="supplier:acme", sku="lost-1", seen_count=3)
    page = admin_client.get("/admin/catalog/externalsku/?mapped=no")
    assert page.status_code == 200 and b"lost-1" in page.content
