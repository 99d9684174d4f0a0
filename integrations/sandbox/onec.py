"""1C in the sandbox: the shop's HTTP stock service, CommerceML documents as 1C writes them, and
a player that drives SyncSite's `/1c/exchange/` the way 1C's "Обмен с сайтом" does.

* `OnecEmulator`, mounted at ``/1c`` (ONEC_BASE_URL = ``{sandbox}/1c``): ``GET /hs/stocks/list?
  format=json[&changedAfter=ISO]`` with HTTP Basic → ``{"stocks": [{"sku", "quantity",
  "warehouse"}]}`` for every sellable item of the sandbox catalog in two 1C warehouses; a
  ``changedAfter`` answers only items changed since. ``POST /_sandbox/1c/stocks`` with
  ``{"sku", "quantity", "warehouse"?}`` changes a figure (for demos and tests).
* `offers_document` / `catalog_document`: CommerceML 2 `offers.xml` / `import.xml` written as a
  stream of bytes, in any of the warehouse shapes 1C and its exchange modules use (2.07+
  `<Склад ИдСклада КоличествоНаСкладе/>`, 2.05 `<КоличествоНаСкладах>`, `<Остатки>`).
* `play_exchange`: checkauth → init → file (in `file_limit` chunks) → import until `success` or
  `failure`, for each file, as 1C does; ``python -m integrations.sandbox.onec play URL`` runs it.

Standard library only, like the rest of the sandbox.
"""
from __future__ import annotations

import argparse
import base64
import http.cookiejar
import sys
import threading
import time
import urllib.error
import urllib.request
from datetime import datetime, timezone
from typing import Iterable, Iterator
from urllib.parse import urlencode
from xml.sax.saxutils import escape, quoteattr

from .catalog_gen import Catalog
from .common import ApiEmulator, Credentials, Request, Response, json_response

USER, PASSWORD = "site", "sandbox-1c"
EXCHANGE_LOGIN, EXCHANGE_PASSWORD = "1c-exchange", "sandbox-exchange"
WAREHOUSES = (("f1a0c0de-0000-4000-8000-000000000001", "Основной склад"),
              ("f1a0c0de-0000-4000-8000-000000000002", "Магазин на Ленина"))
NS = "urn:1C.ru:commerceml_2"


# ------------------------------------------------------------------------------------------------
# CommerceML documents
# ------------------------------------------------------------------------------------------------
def _head(version: str, namespace: bool) -> str:
    stamp = datetime.now(timezone.utc).replace(microsecond=0).isoformat()
    xmlns = f' xmlns="{NS}"' if namespace else ""
    return (f'<?xml version="1.0" encoding="UTF-8"?>\n<КоммерческаяИнформация{xmlns} ВерсияСхемы="{version}" '
            f'ДатаФормирования="{stamp}">\n')


def offers_document(offers: Iterable[tuple[str, str, str, str, dict[str, object]]], *,
                    warehouses: Iterable[tuple[str, str]] = WAREHOUSES, shape: str = "2.07",
                    only_changes: bool = False, namespace: bool = True, total: bool = True,
                    chunk: int = 1 << 16) -> Iterator[bytes]:
    """`offers.xml` as bytes, a chunk at a time. Each offer is (Ид, Артикул, Штрихкод,
    Наименование, {warehouse id: quantity}); `shape` is "2.07", "2.05" or "rests"."""
    version = {"2.05": "2.05", "rests": "2.10"}.get(shape, "2.08")
    buf = [_head(version, namespace),
           f'<ПакетПредложений СодержитТолькоИзменения="{"true" if only_changes else "false"}">\n'
           '<Ид>offers-1</Ид><Наименование>Пакет предложений</Наименование>\n<Склады>\n']
    for wid, name in warehouses:
        buf.append(f"<Склад><Ид>{escape(wid)}</Ид><Наименование>{escape(name)}</Наименование></Склад>\n")
    buf.append("</Склады>\n<Предложения>\n")
    size = 0
    for onec_id, sku, barcode, name, per_warehouse in offers:
        parts = [f"<Предложение><Ид>{escape(onec_id)}</Ид>"]
        if sku:
            parts.append(f"<Артикул>{escape(sku)}</Артикул>")
        if barcode:
            parts.append(f"<Штрихкод>{escape(barcode)}</Штрихкод>")
        parts.append(f"<Наименование>{escape(name)}</Наименование>"
                     "<Цены><Цена><ИдТипаЦены>retail</ИдТипаЦены><ЦенаЗаЕдиницу>100.00</ЦенаЗаЕдиницу>"
                     "<Валюта>RUB</Валюта></Цена></Цены>")
        if total:
            parts.append(f"<Количество>{sum(float(q) for q in per_warehouse.values()):g}</Количество>")
        if shape == "2.05":
            parts.append("<КоличествоНаСкладах>")
            parts += [f"<КоличествоНаСкладе><ИдСклада>{escape(w)}</ИдСклада><Количество>{q}</Количество>"
                      "</КоличествоНаСкладе>" for w, q in per_warehouse.items()]
            parts.append("</КоличествоНаСкладах>")
        elif shape == "rests":
            parts.append("<Остатки><Остаток>")
            parts += [f"<Склад><Ид>{escape(w)}</Ид><Количество>{q}</Количество></Склад>"
                      for w, q in per_warehouse.items()]
            parts.append("</Остаток></Остатки>")
        else:
            parts += [f"<Склад ИдСклада={quoteattr(w)} КоличествоНаСкладе=\"{q}\"/>" for w, q in per_warehouse.items()]
        parts.append("</Предложение>\n")
        text = "".join(parts)
        buf.append(text)
        size += len(text)
        if size >= chunk:
            yield "".join(buf).encode()
            buf, size = [], 0
    buf.append("</Предложения>\n</ПакетПредложений>\n</КоммерческаяИнформация>\n")
    yield "".join(buf).encode()


def catalog_document(items: Iterable[tuple[str, str, str, str]], *, namespace: bool = True,
                     only_changes: bool = False) -> Iterator[bytes]:
    """`import.xml` (Каталог/Товары/Товар: Ид, Артикул, Штрихкод, Наименование)."""
    buf = [_head("2.08", namespace), "<Классификатор><Ид>cls-1</Ид><Наименование>Классификатор</Наименование>"
           "<Склады>"]
    buf += [f"<Склад><Ид>{escape(w)}</Ид><Наименование>{escape(n)}</Наименование></Склад>" for w, n in WAREHOUSES]
    buf.append(f'</Склады></Классификатор>\n<Каталог СодержитТолькоИзменения="{"true" if only_changes else "false"}">'
               "<Ид>cat-1</Ид><ИдКлассификатора>cls-1</ИдКлассификатора><Наименование>Каталог</Наименование>"
               "<Товары>\n")
    for onec_id, sku, barcode, name in items:
        buf.append(f"<Товар><Ид>{escape(onec_id)}</Ид>" + (f"<Артикул>{escape(sku)}</Артикул>" if sku else "")
                   + (f"<Штрихкод>{escape(barcode)}</Штрихкод>" if barcode else "")
                   + f"<Наименование>{escape(name)}</Наименование></Товар>\n")
    buf.append("</Товары></Каталог>\n</КоммерческаяИнформация>\n")
    yield "".join(buf).encode()


def onec_id_for(sku: str) -> str:
    """A stable GUID-looking 1C id for a SKU (the sandbox's 1C "knows" the same goods)."""
    import hashlib

    digest = hashlib.md5(sku.encode()).hexdigest()
    return f"{digest[:8]}-{digest[8:12]}-{digest[12:16]}-{digest[16:20]}-{digest[20:32]}"


# ------------------------------------------------------------------------------------------------
# The HTTP service emulator
# ------------------------------------------------------------------------------------------------
class OnecEmulator(ApiEmulator):
    """The shop's 1C HTTP service `stocks` (its own 1C programmer's shape, SyncSite's default)."""

    name = "1c"
    api_root = ""

    def __init__(self, catalog: Catalog, *, user: str = USER, password: str = PASSWORD, share: float = 0.8,
                 rate_limit: bool = False) -> None:
        super().__init__(credentials=Credentials(token=None, login=user, password=password), rate_limit=rate_limit)
        self.catalog = catalog
        self._lock = threading.Lock()
        self.stocks: dict[tuple[str, str], tuple[int, float]] = {}   # (sku, warehouse) -> (qty, changed at)
        skus = _catalog_skus(catalog)
        cut = int(len(skus) * share)
        now = time.time() - 3600
        for i, sku in enumerate(skus[:cut]):
            self.stocks[(sku, WAREHOUSES[0][1])] = ((i * 7) % 23, now)
            if i % 3 == 0:
                self.stocks[(sku, WAREHOUSES[1][1])] = ((i * 5) % 11, now)
        self.router.add("GET", "hs/stocks/list", self._list, name="GET hs/stocks/list")
        self.control_router.add("POST", "stocks", self._set)

    def _list(self, request: Request) -> Response:
        after = request.arg("changedAfter")
        since = None
        if after:
            try:
                since = datetime.fromisoformat(after.replace("Z", "+00:00")).timestamp()
            except ValueError:
                return json_response({"error": "changedAfter must be ISO 8601"}, 400)
        with self._lock:
            rows = [{"sku": sku, "quantity": qty, "warehouse": wh}
                    for (sku, wh), (qty, at) in self.stocks.items() if since is None or at >= since]
        return json_response({"stocks": rows})

    def _set(self, request: Request) -> Response:
        body = request.json() or {}
        with self._lock:
            self.stocks[(str(body["sku"]), str(body.get("warehouse") or WAREHOUSES[0][1]))] = (
                int(body["quantity"]), time.time())
        return json_response({"ok": True})


def _catalog_skus(catalog: Catalog) -> list[str]:
    from .marketplace import sellable_items

    return [item.sku for item in sellable_items(catalog)]


def settings_for(url: str) -> dict[str, str]:
    """Environment that points SyncSite's 1C poll at a sandbox at `url` and opens the exchange
    with the sandbox player's credentials."""
    return {"ONEC_BASE_URL": f"{url}/1c", "ONEC_USER": USER, "ONEC_PASSWORD": PASSWORD,
            "ONEC_EXCHANGE_LOGIN": EXCHANGE_LOGIN, "ONEC_EXCHANGE_PASSWORD": EXCHANGE_PASSWORD}


def describe(url: str) -> list[str]:
    lines = ["", "1C (HTTP stock service; the exchange player is `manage.py onec_exchange_play`):"]
    lines += [f"  {key}={value}" for key, value in settings_for(url).items()]
    lines.append(f"  control: POST {url}/_sandbox/1c/stocks  {{\"sku\", \"quantity\", \"warehouse\"}}")
    return lines


# ------------------------------------------------------------------------------------------------
# The exchange player: what 1C's "Обмен с сайтом" does against the site
# ------------------------------------------------------------------------------------------------
class ExchangeFailed(RuntimeError):
    pass


def play_exchange(url: str, files: dict[str, bytes], *, login: str = EXCHANGE_LOGIN,
                  password: str = EXCHANGE_PASSWORD, poll: float = 0.5, timeout: float = 600.0,
                  log=print) -> dict[str, str]:
    """checkauth → init → file (chunks of file_limit) → import (repeated while `progress`) for
    each file, in order (import.xml before offers.xml, as 1C sends them). Returns each file's
    final answer; raises ExchangeFailed on `failure` or a refused call."""
    url = url.rstrip("/") + "/"
    jar = http.cookiejar.CookieJar()
    opener = urllib.request.build_opener(urllib.request.HTTPCookieProcessor(jar))
    auth = "Basic " + base64.b64encode(f"{login}:{password}".encode()).decode()

    def call(params: dict, data: bytes | None = None, cookie: str | None = None) -> str:
        request = urllib.request.Request(url + "?" + urlencode(params), data=data,
                                         method="POST" if data is not None else "GET")
        request.add_header("Authorization", auth)
        if cookie:
            request.add_header("Cookie", cookie)
        if data is not None:
            request.add_header("Content-Type", "application/octet-stream")
        try:
            with opener.open(request, timeout=60) as response:
                return response.read().decode("utf-8")
        except urllib.error.HTTPError as exc:
            raise ExchangeFailed(f"{params.get('mode')}: HTTP {exc.code}: {exc.read().decode('utf-8', 'replace')}")

    lines = call({"type": "catalog", "mode": "checkauth"}).splitlines()
    if not lines or lines[0] != "success" or len(lines) < 3:
        raise ExchangeFailed(f"checkauth: {lines}")
    cookie = f"{lines[1]}={lines[2]}"
    log(f"1c: checkauth ok, cookie {lines[1]}")
    init = dict(line.split("=", 1) for line in call({"type": "catalog", "mode": "init"}, cookie=cookie).splitlines()
                if "=" in line)
    limit = int(init.get("file_limit") or 1 << 20)
    log(f"1c: init zip={init.get('zip')} file_limit={limit}")
    answers = {}
    for name, content in files.items():
        for start in range(0, max(len(content), 1), limit):
            answer = call({"type": "catalog", "mode": "file", "filename": name}, content[start:start + limit], cookie)
            if not answer.startswith("success"):
                raise ExchangeFailed(f"file {name}: {answer}")
        log(f"1c: sent {name} ({len(content)} bytes)")
        deadline = time.monotonic() + timeout
        while True:
            answer = call({"type": "catalog", "mode": "import", "filename": name}, cookie=cookie)
            if answer.startswith("progress"):
                if time.monotonic() > deadline:
                    raise ExchangeFailed(f"import {name}: still in progress after {timeout:.0f}s")
                time.sleep(poll)
                continue
            if answer.startswith("success"):
                break
            raise ExchangeFailed(f"import {name}: {answer}")
        log(f"1c: imported {name}")
        answers[name] = answer
    orders = call({"type": "sale", "mode": "query"}, cookie=cookie)
    log(f"1c: sale query answered {len(orders)} bytes")
    return answers


def demo_files(skus: list[str], *, shape: str = "2.07") -> dict[str, bytes]:
    """import.xml and offers.xml for these SKUs: half the offers carry their Артикул, the others
    only the Ид (matched through import.xml), as real 1C exchanges mix."""
    items = [(onec_id_for(sku), sku, "", f"Товар {sku}") for sku in skus]
    offers = []
    for i, sku in enumerate(skus):
        per_warehouse = {WAREHOUSES[0][0]: (i * 3) % 17}
        if i % 2 == 0:
            per_warehouse[WAREHOUSES[1][0]] = i % 5
        offers.append((onec_id_for(sku), sku if i % 2 else "", "", f"Товар {sku}", per_warehouse))
    return {"import.xml": b"".join(catalog_document(items)),
            "offers.xml": b"".join(offers_document(offers, shape=shape))}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Play 1C's exchange with a site against SyncSite")
    sub = parser.add_subparsers(dest="command", required=True)
    play = sub.add_parser("play", help="upload import.xml + offers.xml to URL/1c/exchange/")
    play.add_argument("url", help="the site, e.g. http://127.0.0.1:8000")
    play.add_argument("--sku", action="append", default=[], help="a SKU the offers name (repeat)")
    play.add_argument("--skus-from", help="a file with one SKU a line")
    play.add_argument("--shape", default="2.07", choices=["2.07", "2.05", "rests"])
    play.add_argument("--login", default=EXCHANGE_LOGIN)
    play.add_argument("--password", default=EXCHANGE_PASSWORD)
    args = parser.parse_args(argv)
    skus = list(args.sku)
    if args.skus_from:
        with open(args.skus_from, encoding="utf-8") as fh:
            skus += [line.strip() for line in fh if line.strip()]
    if not skus:
        skus = [f"DEMO-{i:04d}" for i in range(20)]
    try:
        play_exchange(args.url.rstrip("/") + "/1c/exchange/", demo_files(skus, shape=args.shape),
                      login=args.login, password=args.password)
    except (ExchangeFailed, OSError) as exc:
        print(f"1c exchange failed: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
