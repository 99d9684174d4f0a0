import io
import time

import pytest

from integrations.suppliers.feeds import FeedError, Record, Spool, parse_csv, parse_yml, whole_number


def _csv(text: str, enc="utf-8", **kw):
    rejected = []
    rows = list(parse_csv(io.BytesIO(text.encode(enc)), reject=lambda ref, msg: rejected.append((ref, msg)), **kw))
    return rows, rejected


@pytest.mark.parametrize("value,expected", [(5, 5), ("5", 5), (" 7 ", 7), ("3.0", 3), ("4,00", 4), (0, 0),
                                            ("-1", None), ("2.5", None), ("", None), ("abc", None), (True, None),
                                            (-3, None), (1.5, None), (None, None), ("99999999999", None)])
def test_whole_number(value, expected):
    assert whole_number(value) == expected


def test_csv_semicolon_cp1251_with_russian_header_names():
    text = "Артикул;Остаток;Название\nA-1;5;Чайник\nA-2;0;Кружка\n"
    rows, rejected = _csv(text, "cp1251", sku_column="Артикул", stock_column="Остаток")
    assert rows == [Record("A-1", 5), Record("A-2", 0)] and rejected == []


def test_csv_comma_utf8_bom_detected():
    rows, _ = _csv("\ufeffsku,stock\nB-1,3\n")
    assert rows == [Record("B-1", 3)]


def test_csv_utf8_without_bom_and_explicit_settings():
    rows, _ = _csv("sku;stock\nЯ-1;2\n", delimiter=";", encoding="utf-8")
    assert rows == [Record("Я-1", 2)]


def test_csv_bad_rows_rejected_and_counted_rest_applies():
    text = "sku;stock\nOK-1;4\n;5\nBAD-1;-1\nBAD-2;2.5\nBAD-3;lots\nshort\nOK-2;1\n"
    rows, rejected = _csv(text)
    assert rows == [Record("OK-1", 4), Record("OK-2", 1)]
    assert len(rejected) == 5


def test_csv_without_the_columns_is_refused_whole():
    with pytest.raises(FeedError):
        _csv("code;qty\nA;1\n")


def test_csv_wrong_declared_encoding_is_refused_whole():
    with pytest.raises(FeedError):
        _csv("sku;stock\nЯ;1\n", "cp1251", encoding="utf-8")


YML = """<?xml version="1.0" encoding="windows-1251"?>
<!DOCTYPE yml_catalog SYSTEM "shops.dtd">
<yml_catalog date="2026-12-01T10:00:00+03:00"><shop><name>Поставщик</name>
<offers>
<offer id="o1" available="true"><vendorCode>V-1</vendorCode><count>7</count><name>Чайник</name><barcode>4600000000017</barcode></offer>
<offer id="o2" available="false"><vendorCode>V-2</vendorCode></offer>
<offer id="o3" available="true"><vendorCode>V-3</vendorCode></offer>
<offer id="o4"><vendorCode>V-4</vendorCode><count>-2</count></offer>
<offer id="o5"><count>1</count></offer>
</offers></shop></yml_catalog>
"""


def _yml(data: bytes, **kw):
    rejected = []
    rows = list(parse_yml(io.BytesIO(data), reject=lambda ref, msg: rejected.append((ref, msg)), **kw))
    return rows, rejected


def test_yml_vendor_code_count_and_available():
    rows, rejected = _yml(YML.encode("cp1251"), in_stock_quantity=3)
    assert rows == [Record("V-1", 7, ("4600000000017",), "Чайник"), Record("V-2", 0), Record("V-3", 3)]
    assert len(rejected) == 2  # bad count, no vendorCode


def test_yml_sku_from_offer_id():
    rows, _ = _yml(YML.encode("cp1251"), sku_source="id")
    assert [r.sku for r in rows] == ["o1", "o2", "o3", "o5"]


def test_yml_truncated_feed_is_refused():
    data = YML.encode("cp1251")[:-60]
    with pytest.raises(FeedError):
        _yml(data)


def test_yml_entity_expansion_bomb_refused_fast():
    bomb = ('<?xml version="1.0"?><!DOCTYPE lolz [<!ENTITY lol "lol">'
            + "".join(f'<!ENTITY lol{i} "{("&lol" + str(i - 1) + ";") * 10 if i else "&lol;" * 10}">' for i in range(10))
            + ']><yml_catalog><shop><offers><offer id="1"><vendorCode>&lol9;</vendorCode><count>1</count></offer>'
            '</offers></shop></yml_catalog>')
    started = time.monotonic()
    with pytest.raises(FeedError, match="entities"):
        _yml(bomb.encode())
    assert time.monotonic() - started < 1


def test_yml_external_entity_refused():
    xxe = ('<?xml version="1.0"?><!DOCTYPE y [<!ENTITY x SYSTEM "file:///etc/passwd">]>'
           '<yml_catalog><shop><offers><offer id="1"><vendorCode>&x;</vendorCode></offer></offers></shop></yml_catalog>')
    with pytest.raises(FeedError):
        _yml(xxe.encode())


def test_yml_other_root_refused():
    with pytest.raises(FeedError):
        _yml(b"<catalog><offers/></catalog>")


def test_spool_round_trip_in_batches():
    with Spool() as spool:
        for i in range(7):
            spool.add(Record(f"S{i}", i, ("123", "456") if i == 1 else (), "name\twith tab" if i == 2 else ""))
        batches = list(spool.batches(3))
    assert [len(b) for b in batches] == [3, 3, 1]
    assert batches[0][1] == Record("S1", 1, ("123", "456"), "")
    assert batches[0][2].name == "name with tab"
