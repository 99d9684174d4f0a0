"""The CommerceML exchange as 1C drives it: checkauth → init → file (chunks) → import (progress,
then success or failure), for every warehouse shape of offers.xml; and each kind of bad input
answered with `failure` or 401 while nothing changes."""
import base64
from decimal import Decimal

import pytest

from catalog.models import ExternalSku
from integrations.onec.exchange_import import upload_import
from integrations.onec.models import ExchangeSession, ExchangeUpload, OnecItem
from integrations.sandbox.onec import catalog_document, offers_document
from stock.models import StockChange, StockLevel

pytestmark = pytest.mark.django_db
URL = "/1c/exchange/"
W1, W2, W3 = ("w-1", "Основной"), ("w-2", "Магазин"), ("w-3", "Интернет")


def basic(login="exchange", password="p@ss"):
    return "Basic " + base64.b64encode(f"{login}:{password}".encode()).decode()


class OneC:
    """1C's side of the exchange, through the test client."""

    def __init__(self, client):
        self.client = client

    def get(self, **params):
        return self.client.get(URL, params)

    def checkauth(self, **kw):
        response = self.client.get(URL, {"type": "catalog", "mode": "checkauth"}, HTTP_AUTHORIZATION=basic(**kw))
        lines = response.content.decode().split("\n")
        if response.status_code == 200:
            self.client.cookies[lines[1]] = lines[2]
        return response

    def init(self):
        return self.get(type="catalog", mode="init")

    def file(self, name, content: bytes, chunk=4096):
        for start in range(0, len(content), chunk):
            response = self.client.post(f"{URL}?type=catalog&mode=file&filename={name}", data=content[start:start + chunk],
                                        content_type="application/octet-stream")
            if response.status_code != 200 or response.content != b"success":
                return response
        return response

    def import_(self, name):
        return self.get(type="catalog", mode="import", filename=name)

    def exchange(self, name, content: bytes):
        """Upload and import one file, running the worker's task when 1C is told `progress`."""
        assert self.file(name, content).content == b"success"
        answer = self.import_(name)
        if answer.content == b"progress":
            upload_import(upload_id=ExchangeUpload.objects.get(filename=name).pk)
            answer = self.import_(name)
        return answer


@pytest.fixture
def onec_client(client, onec):
    one_c = OneC(client)
    assert one_c.checkauth().status_code == 200
    return one_c


def offers(goods, shape="2.07", only_changes=False, **kw):
    rows = [("id-a", "A-1", "", "Товар A", {W1[0]: 5, W2[0]: 2}),
            ("id-b", "B-2", "", "Товар B", {W1[0]: 0, W3[0]: 7}),
            ("id-c", "", "4600000000031", "Товар C", {W2[0]: "3.000"}),   # by our barcode
            ("id-x", "THEIRS", "", "Чужой", {W1[0]: 9})]                     # unmapped: listed
    return b"".join(offers_document(rows, warehouses=[W1, W2, W3], shape=shape, only_changes=only_changes, **kw))


def levels():
    return {(lv.offer.sku, lv.warehouse.code): lv.stock for lv in StockLevel.objects.select_related("offer", "warehouse")}


EXPECTED = {("A-1", "1c:Основной"): 5, ("A-1", "1c:Магазин"): 2, ("B-2", "1c:Основной"): 0,
            ("B-2", "1c:Интернет"): 7, ("C-3", "1c:Магазин"): 3}


def test_checkauth_init_and_the_cookie(client, onec):
    one_c = OneC(client)
    response = one_c.checkauth()
    assert response.status_code == 200 and response["Content-Type"].startswith("text/plain")
    status, name, value = response.content.decode().split("\n")
    assert status == "success" and name == "syncsite_1c" and len(value) > 30
    assert ExchangeSession.objects.get().cookie_digest != value          # only a digest is kept
    assert one_c.init().content == b"zip=no\nfile_limit=4096"


@pytest.mark.parametrize("shape", ["2.07", "2.05", "rests"])
def test_offers_in_every_warehouse_shape_reach_1c_warehouses_logged_and_kicked(
        onec_client, goods, shape, published, kicks, django_capture_on_commit_callbacks):
    assert onec_client.init().status_code == 200
    with django_capture_on_commit_callbacks(execute=True):
        answer = onec_client.exchange("offers.xml", offers(goods, shape=shape))
    assert answer.content == b"success", answer.content
    assert published.names() == ["integrations.onec.exchange_import"]
    assert levels() == EXPECTED
    assert set(StockChange.objects.values_list("via", "source")) == {("exchange", "1c")}
    assert StockChange.objects.count() == 4                     # B-2 at 0 in Основной is no change
    assert {o for kick in kicks for o in kick} == {goods.a.pk, goods.b.pk, goods.c.pk}
    assert ExternalSku.objects.get(source="1c", sku="THEIRS").name == "Чужой"
    upload = ExchangeUpload.objects.get()
    assert upload.counts["matched"] == 3 and upload.counts["unmatched"] == 1


def test_offers_without_articles_match_through_import_xml_and_a_chunked_upload(onec_client, goods, published):
    onec_client.init()
    catalog = b"".join(catalog_document([("id-a", "A-1", "", "A"), ("id-b", "", "4600000000031", "C by barcode")]))
    assert onec_client.exchange("import.xml", catalog).content == b"success"
    assert OnecItem.objects.count() == 2
    rows = [("id-a", "", "", "A", {W1[0]: 4}), ("id-b", "", "", "C", {W1[0]: 6})]
    document = b"".join(offers_document(rows, warehouses=[W1], only_changes=True))
    assert len(document) > 0
    assert onec_client.exchange("offers.xml", document).content == b"success"
    assert levels() == {("A-1", "1c:Основной"): 4, ("C-3", "1c:Основной"): 6}


def test_a_large_file_arrives_in_chunks_and_is_appended_in_order(onec_client, goods, published):
    onec_client.init()
    rows = [(f"id-{i}", f"NOPE-{i}", "", "x" * 20, {W1[0]: i}) for i in range(100)]
    rows.append(("id-a", "A-1", "", "A", {W1[0]: 11}))
    document = b"".join(offers_document(rows, warehouses=[W1]))
    assert len(document) > 4 * 4096
    assert onec_client.exchange("offers.xml", document).content == b"success"
    upload = ExchangeUpload.objects.get()
    assert upload.chunks == -(-len(document) // 4096) and upload.size == len(document)
    assert levels() == {("A-1", "1c:Основной"): 11}


def test_a_complete_document_zeroes_what_it_no_longer_lists_a_delta_does_not(onec_client, goods, published):
    onec_client.init()
    assert onec_client.exchange("offers.xml", offers(goods)).content == b"success"
    onec_client.init()
    delta = b"".join(offers_document([("id-a", "A-1", "", "A", {W1[0]: 1})], warehouses=[W1], only_changes=True))
    assert onec_client.exchange("offers.xml", delta).content == b"success"
    assert levels() == {**EXPECTED, ("A-1", "1c:Основной"): 1}
    onec_client.init()
    full = b"".join(offers_document([("id-a", "A-1", "", "A", {W1[0]: 2})], warehouses=[W1, W2, W3]))
    assert onec_client.exchange("offers.xml", full).content == b"success"
    assert levels() == {("A-1", "1c:Основной"): 2, ("A-1", "1c:Магазин"): 0, ("B-2", "1c:Основной"): 0,
                        ("B-2", "1c:Интернет"): 0, ("C-3", "1c:Магазин"): 0}


def test_an_offer_with_only_its_total_goes_to_the_1c_warehouse_and_negative_balances_are_zero(
        onec_client, goods, published):
    onec_client.init()
    body = ('<?xml version="1.0" encoding="UTF-8"?><КоммерческаяИнформация ВерсияСхемы="2.04">'
            '<ПакетПредложений><Предложения>'
            '<Предложение><Ид>1</Ид><Артикул>A-1</Артикул><Количество>12</Количество></Предложение>'
            '<Предложение><Ид>2</Ид><Артикул>B-2</Артикул><Количество>-3</Количество></Предложение>'
            '</Предложения></ПакетПредложений></КоммерческаяИнформация>').encode()
    assert onec_client.exchange("offers.xml", body).content == b"success"
    assert levels() == {("A-1", "1c"): 12, ("B-2", "1c"): 0}
    assert ExchangeUpload.objects.get().counts["negative_as_zero"] == 1


def test_windows_1251_documents_are_read(onec_client, goods, published):
    onec_client.init()
    body = ('<?xml version="1.0" encoding="windows-1251"?><КоммерческаяИнформация ВерсияСхемы="2.05">'
            '<ПакетПредложений><Склады><Склад><Ид>s</Ид><Наименование>Склад №1</Наименование></Склад></Склады>'
            '<Предложения><Предложение><Ид>1</Ид><Артикул>A-1</Артикул><КоличествоНаСкладах><КоличествоНаСкладе>'
            '<ИдСклада>s</ИдСклада><Количество>3,5</Количество></КоличествоНаСкладе></КоличествоНаСкладах>'
            '</Предложение></Предложения></ПакетПредложений></КоммерческаяИнформация>').encode("cp1251")
    assert onec_client.exchange("offers.xml", body).content == b"success"
    assert levels() == {("A-1", "1c:Склад №1"): Decimal("3.5")}


def test_sale_query_answers_an_empty_document_and_success(onec_client):
    response = onec_client.get(type="sale", mode="query")
    assert response.status_code == 200 and "КоммерческаяИнформация" in response.content.decode()
    assert onec_client.get(type="sale", mode="success").content == b"success"
    assert onec_client.get(type="sale", mode="init").content.startswith(b"zip=no")


def test_pictures_are_acknowledged_and_dropped(onec_client, tmp_path):
    onec_client.init()
    assert onec_client.file("import_files/ab/pic.jpg", b"\xff\xd8jpeg").content == b"success"
    assert onec_client.import_("import_files/ab/pic.jpg").content == b"success"
    assert not ExchangeUpload.objects.exists()


# -- bad input: failure or 401, nothing changed ---------------------------------------------------
def nothing_changed():
    return not StockLevel.objects.exists() and not StockChange.objects.exists()


@pytest.mark.parametrize("body, reason", [
    ('<?xml version="1.0"?><КоммерческаяИнформация><ПакетПредложений><Предложения><Предложение><Ид>1</Ид>'
     '<Артикул>A-1</Артикул><Количество>5</Количество></Предложение>', "well-formed"),          # cut short
    ("<КоммерческаяИнформация><ПакетПредложений></КоммерческаяИнформация>", "well-formed"),
    ("not xml at all", "well-formed"),
    ('<?xml version="1.0"?><html><body/></html>', "root"),
    ('<?xml version="1.0"?>\n<!DOCTYPE lolz [<!ENTITY lol "lol"><!ENTITY lol1 "&lol;&lol;&lol;&lol;&lol;">'
     '<!ENTITY lol2 "&lol1;&lol1;&lol1;&lol1;&lol1;">]>\n<КоммерческаяИнформация><ПакетПредложений><Предложения>'
     '<Предложение><Ид>1</Ид><Артикул>A-1</Артикул><Наименование>&lol2;</Наименование><Количество>5</Количество>'
     '</Предложение></Предложения></ПакетПредложений></КоммерческаяИнформация>', "DTD"),
    ('<?xml version="1.0"?><!DOCTYPE x [<!ENTITY xxe SYSTEM "file:///etc/passwd">]><x>&xxe;</x>', "DTD"),
])
def test_bad_documents_fail_the_import_with_the_reason_and_change_nothing(onec_client, goods, published, body,
                                                                          reason):
    onec_client.init()
    # A cut-short file starts with a good offer: even that one must not be applied.
    answer = onec_client.exchange("offers.xml", body.encode())
    text = answer.content.decode()
    assert text.startswith("failure\n") and reason in text, text
    assert nothing_changed()
    assert ExchangeUpload.objects.get().state == "failed"


def test_a_file_over_the_size_limit_is_413_and_nothing_is_kept(onec_client, goods, onec, settings, published):
    settings.ONEC = {**onec, "EXCHANGE_MAX_FILE": 10_000}
    onec_client.init()
    response = onec_client.file("offers.xml", offers(goods) * 4)
    assert response.status_code == 413 and response.content.startswith(b"failure\n")
    assert not ExchangeUpload.objects.exists()
    answer = onec_client.import_("offers.xml")
    assert answer.content.startswith(b"failure\n")
    assert nothing_changed()


def test_one_request_over_file_limit_is_413(onec_client, goods, published):
    onec_client.init()
    response = onec_client.client.post(f"{URL}?type=catalog&mode=file&filename=offers.xml", data=b"x" * 5000,
                                       content_type="application/octet-stream")
    assert response.status_code == 413
    assert not ExchangeUpload.objects.exists()


@pytest.mark.parametrize("mode", ["init", "file", "import"])
def test_calls_without_the_session_cookie_are_401(client, onec, goods, mode, published):
    if mode == "file":
        response = client.post(f"{URL}?type=catalog&mode=file&filename=offers.xml", data=offers(goods)[:100],
                               content_type="application/octet-stream", HTTP_AUTHORIZATION=basic())
    else:
        response = client.get(URL, {"type": "catalog", "mode": mode, "filename": "offers.xml"},
                              HTTP_AUTHORIZATION=basic())
    assert response.status_code == 401 and response.content.startswith(b"failure\n")
    client.cookies["syncsite_1c"] = "made-up"
    assert client.get(URL, {"type": "catalog", "mode": "init"}).status_code == 401
    assert not ExchangeUpload.objects.exists() and nothing_changed()


@pytest.mark.parametrize("login, password", [("exchange", "wrong"), ("other", "p@ss"), ("", "")])
def test_a_wrong_password_is_401_and_opens_no_session(client, onec, login, password):
    response = OneC(client).checkauth(login=login, password=password)
    assert response.status_code == 401 and response.content.startswith(b"failure\n")
    assert response["WWW-Authenticate"].startswith("Basic")
    assert not ExchangeSession.objects.exists()


def test_without_configured_credentials_every_call_is_401(client, onec, settings):
    settings.ONEC = {**onec, "EXCHANGE_PASSWORD": ""}
    assert OneC(client).checkauth(password="").status_code == 401


def test_import_of_a_file_never_uploaded_fails_and_changes_nothing(onec_client, goods, published):
    onec_client.init()
    answer = onec_client.import_("offers.xml")
    assert answer.status_code == 400 and answer.content.decode().startswith("failure\n")
    assert "not uploaded" in answer.content.decode()
    assert nothing_changed() and not published


def test_another_sessions_upload_cannot_be_imported(client, onec, goods, published):
    first = OneC(client)
    first.checkauth()
    first.init()
    first.file("offers.xml", offers(goods))
    first.checkauth()                                  # a new session (new cookie)
    assert first.import_("offers.xml").content.startswith(b"failure\n")
    assert nothing_changed()


@pytest.mark.parametrize("name", ["../../etc/passwd.xml", "/abs.xml", ""])
def test_filenames_that_leave_the_session_folder_are_refused(onec_client, name):
    response = onec_client.file(name, b"<x/>")
    assert response.status_code == 400


def test_init_starts_the_session_afresh(onec_client, goods, published):
    onec_client.init()
    onec_client.file("offers.xml", offers(goods)[:1000])
    onec_client.init()
    assert not ExchangeUpload.objects.exists()
    assert onec_client.exchange("offers.xml", offers(goods)).content == b"success"
    assert levels() == EXPECTED


def test_an_imported_file_is_removed_from_disk_and_old_sessions_are_forgotten(onec_client, goods, published, onec):
    from datetime import timedelta
    from pathlib import Path

    from django.utils import timezone

    from integrations.onec.exchange_import import imports_sweep

    onec_client.init()
    assert onec_client.exchange("offers.xml", offers(goods)).content == b"success"
    root = Path(onec["EXCHANGE_DIR"])
    assert not any(p.is_file() for p in root.rglob("*"))
    assert onec_client.import_("offers.xml").content == b"success"     # asked again: the outcome stays
    onec_client.file("import.xml", b"<partial")
    ExchangeSession.objects.update(seen_at=timezone.now() - timedelta(days=8))
    imports_sweep()
    assert not ExchangeSession.objects.exists() and not ExchangeUpload.objects.exists()
    assert not any(root.rglob("*.xml"))


def test_a_complete_prices_only_package_zeroes_nothing(onec_client, goods, published):
    onec_client.init()
    assert onec_client.exchange("offers.xml", offers(goods)).content == b"success"
    body = ('<?xml version="1.0" encoding="UTF-8"?><КоммерческаяИнформация ВерсияСхемы="2.10">'
            '<ПакетПредложений СодержитТолькоИзменения="false"><Склады><Склад><Ид>w-1</Ид>'
            '<Наименование>Основной</Наименование></Склад></Склады><Предложения>'
            '<Предложение><Ид>id-a</Ид><Артикул>A-1</Артикул><Цены><Цена><ЦенаЗаЕдиницу>10</ЦенаЗаЕдиницу></Цена>'
            '</Цены></Предложение></Предложения></ПакетПредложений></КоммерческаяИнформация>').encode()
    onec_client.init()
    assert onec_client.exchange("prices0_1.xml", body).content == b"success"
    assert levels() == EXPECTED


def test_newer_modules_closing_calls_succeed_and_unknown_modes_are_400(onec_client):
    assert onec_client.get(type="catalog", mode="deactivate").content == b"success"
    assert onec_client.get(type="catalog", mode="complete").content == b"success"
    response = onec_client.get(type="catalog", mode="drop-tables")
    assert response.status_code == 400 and response.content.startswith(b"failure\n")
    assert onec_client.get(type="nonsense", mode="init").status_code == 400


def test_read_ahead_yields_everything_in_order_passes_errors_and_stops_when_left():
    from integrations.onec.commerceml import read_ahead

    assert list(read_ahead(iter(range(2345)), chunk=100, depth=2)) == list(range(2345))

    def broken():
        yield 1
        raise ValueError("cut")

    with pytest.raises(ValueError, match="cut"):
        list(read_ahead(broken(), chunk=1))
    endless = read_ahead(iter(range(10 ** 9)), chunk=10, depth=2)
    assert next(endless) == 0
    endless.close()                                       # the reader thread ends too
