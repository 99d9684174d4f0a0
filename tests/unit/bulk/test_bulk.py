"""syncsite.bulk's COPY-based writes, on whichever database the suite runs (SQLite or PostgreSQL)."""
from datetime import timedelta
from decimal import Decimal

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from catalog.models import Category, Offer, Product
from integrations.models import ProductBinding
from syncsite.bulk import Keys, bulk_insert, bulk_update, bulk_upsert

pytestmark = pytest.mark.django_db


def test_bulk_insert_returns_keys_in_order_and_fills_defaults():
    now = timezone.now()
    ids = bulk_insert(Product, [("Первый", 10), ("Второй", None)], fields=["name", "vat"],
                      touch={"updated_at": now, "created_at": now})
    first, second = Product.objects.get(pk=ids[0]), Product.objects.get(pk=ids[1])
    assert (first.name, first.vat, second.name, second.vat) == ("Первый", 10, "Второй", None)
    assert first.slug == "" and first.archived is False and first.updated_at == now


def test_bulk_insert_writes_json_and_decimal_columns():
    product = Product.objects.create(name="P")
    [pk] = bulk_insert(Offer, [(product.pk, "SKU-1", "n", Decimal("10.50"), {"Цвет": "красный"})],
                       fields=["product_id", "sku", "name", "price", "characteristics"])
    offer = Offer.objects.get(pk=pk)
    assert offer.price == Decimal("10.50") and offer.characteristics == {"Цвет": "красный"} and offer.currency == "RUB"


def test_times_keep_their_instant_whatever_their_offset_and_repeats():
    """The same instant in another offset, a repeated stamp, a microsecond and None all land as
    given (insert, and upsert through its temp table)."""
    from zoneinfo import ZoneInfo

    utc = timezone.now().replace(microsecond=123456)
    moscow = utc.astimezone(ZoneInfo("Europe/Moscow"))
    products = [Product.objects.create(name=str(i)) for i in range(4)]
    stamps = [utc, moscow, utc + timedelta(microseconds=1), None]
    bulk_insert(ProductBinding, [("moysklad", f"x{i}", p.pk, stamp, utc)
                                 for i, (p, stamp) in enumerate(zip(products, stamps))],
                fields=["system", "external_id", "product_id", "external_updated_at", "synced_at"])
    got = dict(ProductBinding.objects.values_list("external_id", "external_updated_at"))
    assert got == {"x0": utc, "x1": utc, "x2": utc + timedelta(microseconds=1), "x3": None}
    assert set(ProductBinding.objects.values_list("synced_at", flat=True)) == {utc}
    later = moscow + timedelta(hours=1)
    bulk_upsert(ProductBinding, [("moysklad", "x3", products[3].pk, later)],
                fields=["system", "external_id", "product_id", "external_updated_at"],
                unique_fields=["system", "external_id"], update_fields=["external_updated_at"])
    assert ProductBinding.objects.get(external_id="x3").external_updated_at == utc + timedelta(hours=1)


def test_bulk_upsert_inserts_updates_and_leaves_unchanged_rows_alone():
    old = timezone.now() - timedelta(days=1)
    now = timezone.now()
    a = Category.objects.create(name="A", path="A")
    b = Category.objects.create(name="B", path="B")
    Category.objects.filter(pk__in=[a.pk, b.pk]).update(updated_at=old)
    result = bulk_upsert(Category, [(a.pk, "A", "A"), (b.pk, "B2", "B2")], fields=["id", "name", "path"],
                         unique_fields=["id"], update_fields=["name", "path"], touch={"updated_at": now})
    assert result.updated == [(b.pk,)] and result.inserted == []
    assert Category.objects.get(pk=a.pk).updated_at == old            # nothing differed: untouched
    assert (Category.objects.get(pk=b.pk).name, Category.objects.get(pk=b.pk).updated_at) == ("B2", now)


def test_bulk_upsert_on_a_two_field_key_reports_inserted_keys():
    p1, p2 = Product.objects.create(name="1"), Product.objects.create(name="2")
    ProductBinding.objects.create(system="moysklad", external_id="x1", product=p1, external_code="old")
    result = bulk_upsert(ProductBinding, [("moysklad", "x1", p1.pk, "new"), ("moysklad", "x2", p2.pk, "c2")],
                         fields=["system", "external_id", "product_id", "external_code"],
                         unique_fields=["system", "external_id"], update_fields=["external_code"])
    assert result.inserted == [("moysklad", "x2")] and result.updated == [("moysklad", "x1")]
    assert ProductBinding.objects.get(external_id="x1").external_code == "new"


def test_bulk_update_changes_only_differing_rows_and_never_inserts():
    old = timezone.now() - timedelta(days=1)
    product = Product.objects.create(name="P")
    same = Offer.objects.create(product=product, sku="S1", name="s", price=Decimal("5.00"))
    moved = Offer.objects.create(product=product, sku="S2", name="s", price=Decimal("5.00"))
    Offer.objects.update(updated_at=old)
    now = timezone.now()
    changed = bulk_update(Offer, [(same.pk, Decimal("5")), (moved.pk, Decimal("6")), (10 ** 9, Decimal("1"))],
                          fields=["price"], touch={"updated_at": now})
    assert changed == [moved.pk] and Offer.objects.count() == 2
    assert Offer.objects.get(pk=same.pk).updated_at == old and Offer.objects.get(pk=moved.pk).updated_at == now


def test_any_lookup_finds_the_same_rows_as_in_with_one_parameter():
    product = Product.objects.create(name="P")
    offers = [Offer.objects.create(product=product, sku=f"K{i}", name="n") for i in range(5)]
    skus = [f"K{i}" for i in range(0, 5, 2)] + ["missing"]
    with CaptureQueriesContext(connection) as captured:
        found = sorted(Offer.objects.filter(sku__any=skus).values_list("sku", flat=True))
    assert found == ["K0", "K2", "K4"]
    assert sorted(Offer.objects.filter(product_id__any=[product.pk]).values_list("pk", flat=True)) == \
        sorted(o.pk for o in offers)
    if connection.vendor == "postgresql":
        assert "= ANY(" in captured[0]["sql"]
    assert list(Offer.objects.filter(sku__any=[])) == []


def test_any_lookup_keeps_awkward_values_intact():
    product = Product.objects.create(name="P")
    awkward = ['a"b', "c\\d", "e,f", "{g}", "h i", "NULL", "ж"]
    for sku in awkward:
        Offer.objects.create(product=product, sku=sku, name="n")
    Offer.objects.create(product=product, sku="other", name="n")
    assert sorted(Offer.objects.filter(sku__any=Keys(awkward)).values_list("sku", flat=True)) == sorted(awkward)


def test_many_rows_are_written_a_slice_at_a_time_in_one_transaction():
    """Past 10,000 rows the rows are prepared and written a slice at a time (memory stays flat on
    SQLite), still all or nothing: a failure in a later slice leaves none of the earlier ones."""
    from django.db import IntegrityError, transaction

    n = 25_000
    ids = bulk_insert(Product, [(f"P{i}", None) for i in range(n)], fields=["name", "vat"])
    assert len(ids) == n == Product.objects.count() and ids == sorted(ids)
    rows = [("moysklad", f"x{i}", pk, f"c{i}") for i, pk in enumerate(ids)]
    result = bulk_upsert(ProductBinding, rows, fields=["system", "external_id", "product_id", "external_code"],
                         unique_fields=["system", "external_id"], update_fields=["product_id", "external_code"])
    assert len(result.inserted) == n == ProductBinding.objects.count()
    # the last row binds an already bound product again: the (system, product) key refuses it
    changed = [(s, e, p, c + "!") for s, e, p, c in rows[::2]] + [("moysklad", "x-new", ids[0], "again")]
    with pytest.raises(IntegrityError):
        with transaction.atomic():
            bulk_upsert(ProductBinding, changed, fields=["system", "external_id", "product_id", "external_code"],
                        unique_fields=["system", "external_id"], update_fields=["product_id", "external_code"])
    assert not ProductBinding.objects.filter(external_code__endswith="!").exists()


@pytest.mark.skipif(connection.vendor != "postgresql", reason="binary COPY is PostgreSQL's (SQLite takes any Python value)")
def test_a_value_of_the_wrong_type_names_table_column_and_row_and_writes_nothing():
    """Binary COPY sends typed values: a time without its offset is refused before anything is
    written, with the table, its columns and the row in the message."""
    from datetime import datetime

    from django.db import transaction

    product = Product.objects.create(name="P")
    now = timezone.now()
    with pytest.raises(TypeError) as caught, transaction.atomic():
        bulk_insert(ProductBinding, [("moysklad", "x-ok", product.pk, now),
                                     ("moysklad", "x-naive", product.pk, datetime(2026, 1, 2, 3, 4, 5))],
                    fields=["system", "external_id", "product_id", "external_updated_at"])
    message = str(caught.value)
    assert '"integrations_productbinding"' in message and "external_updated_at timestamptz" in message
    assert "x-naive" in message
    assert not ProductBinding.objects.exists()
