"""The MoySklad emulator over real HTTP: auth, encodings, paging, filters, single objects."""
import base64
import gzip
import json
import socket

import httpx
import pytest

from integrations.sandbox.catalog_gen import format_msk, now_msk_ms, parse_msk

from .conftest import AUTH


def errors(resp):
    body = resp.json()
    assert set(body) == {"errors"} and body["errors"], body
    return body["errors"][0]


# -- authentication and headers ---------------------------------------------------------------
def test_missing_or_wrong_auth_is_401_with_errors_body(sandbox):
    for headers in ({}, {"Authorization": "Bearer wrong"}, {"Authorization": "Basic " + base64.b64encode(b"admin@sandbox:x").decode()}):
        resp = httpx.get(f"{sandbox.moysklad_base_url}/entity/product", headers=headers)
        assert resp.status_code == 401
        err = errors(resp)
        assert err["code"] == 1056 and err["error"].startswith("Ошибка аутентификации")


def test_basic_auth_works(sandbox):
    auth = "Basic " + base64.b64encode(b"admin@sandbox:sandbox").decode()
    resp = httpx.get(f"{sandbox.moysklad_base_url}/entity/store", headers={"Authorization": auth})
    assert resp.status_code == 200


def test_without_gzip_is_415_with_empty_body(sandbox):
    for encoding in ("identity", "deflate, br"):
        resp = httpx.get(f"{sandbox.moysklad_base_url}/entity/product",
                         headers={**AUTH, "Accept-Encoding": encoding})
        assert resp.status_code == 415
        assert resp.content == b""


def test_answers_are_gzip_json_utf8(sandbox):
    """Read the raw bytes off the socket to see the encoding the client would receive."""
    host, port = sandbox.url.removeprefix("http://").split(":")
    with socket.create_connection((host, int(port))) as sock:
        sock.sendall(b"GET /moysklad/api/remap/1.2/entity/store HTTP/1.1\r\nHost: x\r\n"
                     b"Authorization: Bearer sandbox-token\r\nAccept-Encoding: gzip\r\nConnection: close\r\n\r\n")
        raw = b""
        while chunk := sock.recv(65536):
            raw += chunk
    head, _, body = raw.partition(b"\r\n\r\n")
    headers = head.decode().lower()
    assert "content-encoding: gzip" in headers
    assert "content-type: application/json;charset=utf-8" in headers
    data = json.loads(gzip.decompress(body))
    assert data["rows"][0]["name"] == "Основной склад"
    assert data["meta"]["href"].startswith("http://x/moysklad/api/remap/1.2/entity/store")  # hrefs follow Host


def test_rate_limit_headers_on_200(ms):
    resp = ms.get("/entity/store")
    assert resp.headers["X-RateLimit-Limit"] == "45"
    assert resp.headers["X-Lognex-Retry-TimeInterval"] == "3000"
    assert "X-RateLimit-Remaining" in resp.headers


def test_unknown_paths(ms):
    resp = ms.get("/entity/nosuchthing")
    assert resp.status_code == 404 and errors(resp)["code"] == 1005
    resp = ms.get("/no/such/path")
    assert resp.status_code == 404 and errors(resp)["code"] == 1002
    resp = ms.post("/entity/store", json={})
    assert resp.status_code == 405 and errors(resp)["code"] == 1039


# -- paging -----------------------------------------------------------------------------------
def test_collection_envelope_and_paging(ms):
    first = ms.get("/entity/product", params={"limit": 50}).json()
    meta = first["meta"]
    assert set(first) == {"context", "meta", "rows"}
    assert meta["type"] == "product" and meta["mediaType"] == "application/json"
    assert meta["limit"] == 50 and meta["offset"] == 0 and len(first["rows"]) == 50
    assert "previousHref" not in meta and meta["nextHref"].endswith("limit=50&offset=50")
    size = meta["size"]
    seen, href = [], meta["href"]
    while href:                       # follow nextHref the way a client would
        page = ms.get(href).json()
        seen += [row["id"] for row in page["rows"]]
        href = page["meta"].get("nextHref")
    assert len(seen) == len(set(seen)) == size
    last = ms.get("/entity/product", params={"limit": 50, "offset": size - 10}).json()["meta"]
    assert "nextHref" not in last and last["previousHref"].endswith(f"offset={size - 60}")


def test_default_limit_is_1000_and_max_is_1000(ms):
    assert ms.get("/entity/product").json()["meta"]["limit"] == 1000
    resp = ms.get("/entity/product", params={"limit": 1001})
    assert resp.status_code == 400
    err = errors(resp)
    assert err["parameter"] == "limit" and isinstance(err["code"], int)
    assert ms.get("/entity/product", params={"limit": "x"}).status_code == 400


def test_next_href_keeps_filter_and_order(ms):
    params = {"limit": 5, "filter": "archived=true;archived=false", "order": "updated,desc"}
    page1 = ms.get("/entity/product", params=params).json()
    page2 = ms.get(page1["meta"]["nextHref"]).json()
    assert page2["meta"]["size"] == page1["meta"]["size"]
    assert page1["rows"][-1]["updated"] >= page2["rows"][0]["updated"]


# -- entities ---------------------------------------------------------------------------------
def test_product_shape(ms):
    row = next(r for r in ms.get("/entity/product").json()["rows"] if r.get("productFolder"))
    assert row["meta"]["type"] == "product" and row["meta"]["href"].endswith(row["id"])
    assert row["id"] not in row["meta"]["uuidHref"] and "online.moysklad.ru/app/#good/edit?id=" in row["meta"]["uuidHref"]
    parse_msk(row["updated"])
    assert len(row["updated"]) == 23                      # YYYY-MM-DD HH:MM:SS.mmm
    price = row["salePrices"][0]
    assert isinstance(price["value"], float) and price["value"] % 100 == 0   # kopecks
    assert price["priceType"]["name"] == "Цена продажи" and price["currency"]["meta"]["type"] == "currency"
    assert set(row["barcodes"][0]) == {"ean13"}
    assert row["pathName"] and row["archived"] is False and "variantsCount" in row
    assert row["productFolder"]["meta"]["type"] == "productfolder"


def test_variant_shape_and_price_fallback(ms, sandbox):
    rows = ms.get("/entity/variant").json()["rows"]
    row = rows[0]
    assert row["product"]["meta"]["type"] == "product"
    assert [c["name"] for c in row["characteristics"]] == ["Цвет", "Размер"]
    assert row["name"].endswith(f"({row['characteristics'][0]['value']}, {row['characteristics'][1]['value']})")
    cat = sandbox.moysklad.catalog
    fallback = next(r for r in rows if cat.v_price[cat.resolve(r["id"])[1]] == 0)
    parent = ms.get(fallback["product"]["meta"]["href"]).json()
    assert fallback["salePrices"][0]["value"] == parent["salePrices"][0]["value"]


def test_folders_stores_org_currency_pricetypes(ms):
    folders = ms.get("/entity/productfolder").json()["rows"]
    nested = next(f for f in folders if "/" in f["pathName"])
    assert nested["productFolder"]["meta"]["type"] == "productfolder"
    stores = ms.get("/entity/store").json()
    assert stores["meta"]["size"] == 3
    assert ms.get("/entity/organization").json()["meta"]["size"] == 1
    assert ms.get("/entity/currency").json()["rows"][0]["isoCode"] == "RUB"
    price_types = ms.get("/context/companysettings/pricetype").json()
    assert isinstance(price_types, list) and price_types[0]["name"] == "Цена продажи"


def test_single_objects(ms, sandbox):
    pid = sandbox.moysklad.product_ids()[3]
    assert ms.get(f"/entity/product/{pid}").json()["id"] == pid
    sid = sandbox.moysklad.store_ids()[0]
    assert ms.get(f"/entity/store/{sid}").json()["name"] == "Основной склад"
    missing = ms.get("/entity/product/6b44332f-b0ac-11ea-ac14-000a00000002")
    assert missing.status_code == 404 and errors(missing)["code"] == 1021
    assert ms.get(f"/entity/variant/{pid}").status_code == 404        # a product id is no variant id
    bad = ms.get("/entity/product/not-a-uuid")
    assert bad.status_code == 400 and errors(bad)["code"] == 1052


def test_ui_uuid_redirects_to_api_id(ms, sandbox):
    product = sandbox.moysklad.product(sandbox.moysklad.product_ids()[0])
    ui_id = product["meta"]["uuidHref"].rsplit("=", 1)[1]
    resp = ms.get(f"/entity/product/{ui_id}")
    assert resp.status_code == 308
    assert resp.headers["Location"].endswith(f"/entity/product/{product['id']}")


# -- filters ----------------------------------------------------------------------------------
def ids(resp):
    assert resp.status_code == 200, resp.text
    return [row["id"] for row in resp.json()["rows"]]


def test_archived_filter(ms, sandbox):
    every = set(sandbox.moysklad.product_ids(include_archived=True))
    active = set(sandbox.moysklad.product_ids(include_archived=False))
    assert every != active
    assert set(ids(ms.get("/entity/product"))) == active                      # default: active only
    assert set(ids(ms.get("/entity/product", params={"filter": "archived=false"}))) == active
    assert set(ids(ms.get("/entity/product", params={"filter": "archived=true"}))) == every - active
    assert set(ids(ms.get("/entity/product", params={"filter": "archived=true;archived=false"}))) == every
    assert ms.get("/entity/product", params={"filter": "archived=maybe"}).status_code == 400


def test_updated_filters(ms):
    rows = ms.get("/entity/product", params={"order": "updated"}).json()["rows"]
    pivot = rows[len(rows) // 2]["updated"]
    newer = ms.get("/entity/product", params={"filter": f"updated>={pivot}"}).json()["rows"]
    assert newer and all(r["updated"] >= pivot for r in newer)
    assert len(newer) == sum(1 for r in rows if r["updated"] >= pivot)
    window = ms.get("/entity/product", params={"filter": f"updated>={pivot[:16]};updated<={pivot}"}).json()["rows"]
    assert window and all(pivot[:16] <= r["updated"] <= pivot for r in window)   # minute precision accepted
    bad = ms.get("/entity/product", params={"filter": "updated>=yesterday"})
    assert bad.status_code == 400 and errors(bad)["code"] == 1035
    both = ms.get("/entity/product", params={"filter": f"updated={pivot};updated>={pivot}"})
    assert both.status_code == 400


def test_equality_filters(ms, sandbox):
    rows = ms.get("/entity/product").json()["rows"]
    a, b = rows[0], rows[1]
    assert ids(ms.get("/entity/product", params={"filter": f"externalCode={a['externalCode']}"})) == [a["id"]]
    # several = on one field -> OR; different fields -> AND
    assert ids(ms.get("/entity/product", params={"filter": f"id={a['id']};id={b['id']}"})) == [a["id"], b["id"]]
    assert ids(ms.get("/entity/product", params={"filter": f"id={a['id']};code={b['code']}"})) == []
    assert ids(ms.get("/entity/product", params={"filter": f"code={a['code']}"})) == [a["id"]]
    # != on one field -> NOT IN
    assert a["id"] not in ids(ms.get("/entity/product", params={"filter": f"id!={a['id']}"}))
    # like operators, case-insensitive
    word = a["name"].split()[0]
    found = ms.get("/entity/product", params={"filter": f"name~={word.lower()}"}).json()["rows"]
    assert found and all(r["name"].lower().startswith(word.lower()) for r in found)
    # empty check: products without article
    no_article = ms.get("/entity/product", params={"filter": "article="}).json()["rows"]
    assert no_article and all("article" not in r for r in no_article)


def test_id_filter_ignores_archived(ms, sandbox):
    archived = set(sandbox.moysklad.product_ids()) - set(sandbox.moysklad.product_ids(include_archived=False))
    pid = sorted(archived)[0]
    assert ids(ms.get("/entity/product", params={"filter": f"id={pid};archived=false"})) == [pid]


def test_variants_by_product(ms, sandbox):
    variant = ms.get("/entity/variant").json()["rows"][0]
    pid = variant["product"]["meta"]["href"].rsplit("/", 1)[1]
    rows = ms.get("/entity/variant", params={"filter": f"productid={pid}"}).json()["rows"]
    assert variant["id"] in [r["id"] for r in rows]
    assert all(r["product"]["meta"]["href"].endswith(pid) for r in rows)
    product = ms.get(f"/entity/product/{pid}").json()
    assert product["variantsCount"] == len(rows)


def test_unknown_filter_field_and_bad_order(ms):
    resp = ms.get("/entity/product", params={"filter": "colour=red"})
    assert resp.status_code == 400 and errors(resp)["code"] == 1014
    resp = ms.get("/entity/product", params={"order": "colour"})
    assert resp.status_code == 400 and errors(resp)["code"] == 1042


def test_order_by_updated_then_id(ms):
    rows = ms.get("/entity/product", params={"order": "updated,asc;id"}).json()["rows"]
    keys = [(r["updated"], r["id"]) for r in rows]
    assert keys == sorted(keys)
    rows = ms.get("/entity/product", params={"order": "id,desc"}).json()["rows"]
    assert [r["id"] for r in rows] == sorted((r["id"] for r in rows), reverse=True)


def test_expand_only_up_to_limit_100(ms):
    small = ms.get("/entity/variant", params={"expand": "product", "limit": 100}).json()["rows"][0]
    assert "name" in small["product"]
    big = ms.get("/entity/variant", params={"expand": "product", "limit": 101}).json()["rows"][0]
    assert set(big["product"]) == {"meta"}                 # silently ignored


# -- edits through the Python API show up in deltas ---------------------------------------------
def test_touch_update_delete_show_in_lists(make_sandbox, client_for):
    srv = make_sandbox(rate_limit=False)
    ms = client_for(srv)
    since = format_msk(now_msk_ms() - 1000)
    touched = srv.moysklad.touch_products(5)
    delta = ids(ms.get("/entity/product", params={"filter": f"updated>={since}"}))
    assert sorted(delta) == sorted(touched)

    pid = srv.moysklad.product_ids(include_archived=False)[0]
    srv.moysklad.update_product(pid, name="Переименован", salePrice=100000, archived=True)
    row = ms.get(f"/entity/product/{pid}").json()
    assert row["name"] == "Переименован" and row["salePrices"][0]["value"] == 100000.0 and row["archived"]
    assert pid not in ids(ms.get("/entity/product"))
    assert pid in ids(ms.get("/entity/product", params={"filter": f"updated>={since};archived=true"}))

    srv.moysklad.delete_product(pid)
    assert ms.get(f"/entity/product/{pid}").status_code == 404
    assert pid not in ids(ms.get("/entity/product", params={"filter": "archived=true;archived=false"}))
    with pytest.raises(KeyError):
        srv.moysklad.update_product(pid, name="x")
