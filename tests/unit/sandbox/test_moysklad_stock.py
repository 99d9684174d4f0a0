"""Stock reports: the bare-array /current reports and the paged extended ones."""
from integrations.sandbox.catalog_gen import DAY_MS, format_msk, now_msk_ms

STOCK_TYPES = ("stock", "freeStock", "quantity", "reserve", "inTransit")


def test_bystore_current_shape(ms, sandbox):
    rows = ms.get("/report/stock/bystore/current").json()
    assert isinstance(rows, list) and rows
    assert all(set(r) == {"assortmentId", "storeId", "stock"} for r in rows)
    assert all(r["stock"] != 0 for r in rows)                  # zero lines only on request
    assert {r["storeId"] for r in rows if r["storeId"]} <= set(sandbox.moysklad.store_ids())
    assert all(isinstance(r["stock"], (int, float)) for r in rows)


def test_row_key_follows_stock_type(ms):
    for stock_type in STOCK_TYPES:
        rows = ms.get("/report/stock/all/current", params={"stockType": stock_type}).json()
        assert rows and all(set(r) == {"assortmentId", stock_type} for r in rows), stock_type
    assert ms.get("/report/stock/all/current", params={"stockType": "bogus"}).status_code == 400


def test_reserves_without_store(ms):
    rows = ms.get("/report/stock/bystore/current", params={"stockType": "reserve"}).json()
    nulls = [r for r in rows if r["storeId"] is None]
    assert len(nulls) >= 2 and all(r["reserve"] > 0 for r in nulls)
    free = ms.get("/report/stock/bystore/current", params={"stockType": "freeStock"}).json()
    assert any(r["storeId"] is None and r["freeStock"] < 0 for r in free)


def test_all_current_sums_stores(ms):
    by_store = ms.get("/report/stock/bystore/current").json()
    totals = {}
    for r in by_store:
        totals[r["assortmentId"]] = totals.get(r["assortmentId"], 0) + r["stock"]
    all_rows = {r["assortmentId"]: r["stock"] for r in ms.get("/report/stock/all/current").json()}
    assert {k: v for k, v in totals.items() if v} == all_rows


def test_zero_lines_and_never_moved_items(ms, sandbox):
    plain = ms.get("/report/stock/bystore/current").json()
    zeros = ms.get("/report/stock/bystore/current", params={"include": "zeroLines"}).json()
    assert len(zeros) > len(plain) and any(r["stock"] == 0 for r in zeros)
    listed = {r["assortmentId"] for r in zeros}
    sellable = set(sandbox.moysklad.product_ids(include_archived=False)) | set(sandbox.moysklad.variant_ids(False))
    assert sellable - listed                                   # some items never moved: never listed


def test_filters_by_assortment_and_store(ms, sandbox):
    rows = ms.get("/report/stock/bystore/current").json()
    a, b = rows[0]["assortmentId"], rows[-1]["assortmentId"]
    store = rows[0]["storeId"]
    got = ms.get("/report/stock/bystore/current", params={"filter": f"assortmentId={a},{b};storeId={store}"}).json()
    assert got and {r["assortmentId"] for r in got} <= {a, b} and {r["storeId"] for r in got} == {store}
    # repeated filter parameters work like a comma list
    again = ms.get("/report/stock/bystore/current",
                   params=[("filter", f"assortmentId={a}"), ("filter", f"assortmentId={b}"), ("filter", f"storeId={store}")])
    assert again.json() == got
    assert ms.get("/report/stock/all/current", params={"filter": "name=x"}).status_code == 400


def test_changed_since_returns_current_absolute_values(make_sandbox, client_for):
    srv = make_sandbox(rate_limit=False)
    ms = client_for(srv)
    since = format_msk(now_msk_ms() - 2000, millis=False)
    assert ms.get("/report/stock/bystore/current", params={"changedSince": since}).json() == []

    em = srv.moysklad
    item = em.variant_ids(include_archived=False)[0]
    store = em.store_ids()[1]
    em.set_stock(item, store, stock=5, reserve=2)
    rows = ms.get("/report/stock/bystore/current", params={"changedSince": since, "stockType": "freeStock"}).json()
    assert rows == [{"assortmentId": item, "storeId": store, "freeStock": 3}]
    em.set_stock(item, store, stock=0, reserve=0)                   # zero lines are always included
    rows = ms.get("/report/stock/all/current", params={"changedSince": since}).json()
    expected = sum(em.stock(item, s)["stock"] for s in em.store_ids())
    assert rows == [{"assortmentId": item, "stock": expected}]

    # a deleted item comes back as 0
    pid = next(p for p in em.product_ids(include_archived=False) if em.stock(p, em.store_ids()[0])["stock"] > 0)
    em.delete_product(pid)
    rows = ms.get("/report/stock/bystore/current", params={"changedSince": since}).json()
    assert {r["stock"] for r in rows if r["assortmentId"] == pid} == {0}


def test_changed_since_limits(ms):
    too_old = format_msk(now_msk_ms() - DAY_MS - 60_000, millis=False)
    future = format_msk(now_msk_ms() + 60_000, millis=False)
    for value in (too_old, future, "not a date"):
        resp = ms.get("/report/stock/all/current", params={"changedSince": value})
        assert resp.status_code == 400, value
        assert resp.json()["errors"][0]["parameter"] == "changedSince"
    ok = format_msk(now_msk_ms() - DAY_MS + 60_000, millis=False)
    assert ms.get("/report/stock/all/current", params={"changedSince": ok}).status_code == 200


def test_extended_bystore_report(ms, sandbox):
    page = ms.get("/report/stock/bystore", params={"limit": 10}).json()
    assert page["meta"]["limit"] == 10 and page["meta"]["size"] > 10 and "nextHref" in page["meta"]
    row = page["rows"][0]
    assert row["meta"]["type"] in ("product", "variant")
    assert len(row["stockByStore"]) == 3
    assert set(row["stockByStore"][0]) == {"meta", "name", "stock", "reserve", "inTransit"}
    assert ms.get("/report/stock/bystore", params={"limit": 1001}).status_code == 400


def test_extended_all_report(ms):
    rows = ms.get("/report/stock/all", params={"limit": 20}).json()["rows"]
    row = rows[0]
    assert {"meta", "stock", "reserve", "inTransit", "quantity", "name", "code", "price", "salePrice"} <= set(row)
    assert row["quantity"] == row["stock"] - row["reserve"] + row["inTransit"]
    grouped = ms.get("/report/stock/all", params={"groupBy": "product", "limit": 1000}).json()["rows"]
    assert {r["meta"]["type"] for r in grouped} == {"product"}
