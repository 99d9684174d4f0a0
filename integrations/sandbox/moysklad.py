"""MoySklad JSON API 1.2 emulator (catalog, stores, stock reports).

Follows /work/shared/docs/api/moysklad.md: collection envelope and offset paging (limit <= 1000),
``filter=`` with ``; = != > < >= <= ~ ~= =~`` and its OR/AND rules, ``order=``, default
active-only lists, naive-MSK datetimes, kopeck prices, the bare-array ``/current`` stock reports
with ``stockType``/``changedSince``/``include=zeroLines``/``assortmentId``/``storeId`` filters,
the paged extended stock reports, the errors body, gzip-or-415, Basic/Bearer auth, the weighted
45-units-per-3-s budget with its headers, and the 5-parallel cap.

Mounted at ``/moysklad`` by server.py, so ``MOYSKLAD_BASE_URL = http://HOST:PORT/moysklad/api/remap/1.2``.
Order endpoints (customerorder, counterparty, demand, webhooks...) are meant to be added by
another module: register routes on ``emulator.router`` (paths relative to ``api/remap/1.2/``),
render errors by raising ``common.ApiError``, and reuse ``parse_filter``/``select`` here.
"""
from __future__ import annotations

import collections
import json
import re
from array import array
from dataclasses import dataclass
from functools import partial
from typing import Any, Callable, Iterable, NamedTuple, Sequence

from .catalog_gen import (
    ARCHIVED, CHARACTERISTIC, CURRENCY, DAY_MS, DELETED, EMPLOYEE, FOLDER, GROUP, NULL_STORE,
    ORGANIZATION, PRICE_TYPES, PRICETYPE, PRODUCT, STORE, UOM, VARIANT, Catalog, format_msk,
    is_uuid, now_msk_ms, parse_msk,
)
from .common import (
    JSON_CONTENT_TYPE, ApiEmulator, ApiError, Credentials, Fault, LimitDecision, Page, Request, Response,
    Route, empty_response, json_response, page_href,
)

API_ROOT = "api/remap/1.2/"
UI_BASE = "https://online.moysklad.ru/app/#"
MORE_INFO = "https://api.moysklad.ru/api/remap/1.2/doc#обработка-ошибок-{code}"
MEDIA = "application/json"
PAGE_MAX = 1000
EXPAND_PAGE_MAX = 100
HEAVY_WEIGHT = 5              # GET report/stock/all and report/stock/bystore (paged)
STOCK_TYPES = ("stock", "freeStock", "quantity", "reserve", "inTransit")
ACCEPT_VALUE = "application/json;charset=utf-8"

# Error codes (md/_errors.md of the official docs).
E_UNKNOWN_PATH = 1002
E_UNKNOWN_TYPE = 1005
E_FILTER_VALUE = 1014
E_FORBIDDEN = 1016
E_NOT_FOUND = 1021
E_FILTER = 1034
E_DATE = 1035
E_METHOD = 1039
E_PARAMS = 1040
E_SORT = 1042
E_RATE = 1049
E_UUID = 1052
E_AUTH = 1056
E_ACCEPT = 1062
E_PARALLEL = 1073

_DEFAULT_FAULT_CODES = {401: E_AUTH, 403: E_FORBIDDEN, 404: E_NOT_FOUND, 429: E_RATE}
_DEFAULT_FAULT_MESSAGES = {
    400: "Ошибка запроса",
    401: "Ошибка аутентификации: неверный токен",
    403: "Доступ запрещен: у вас нет прав на просмотр данного объекта",
    404: "Объект не найден",
    429: "Превышено ограничение на количество запросов в единицу времени",
    500: "Внутренняя ошибка сервера",
    502: "Bad Gateway",
    503: "Сервис временно недоступен",
    504: "Превышено время ожидания ответа",
}


# ---------------------------------------------------------------------------------------------
# filter= parsing and evaluation
# ---------------------------------------------------------------------------------------------
class Cond(NamedTuple):
    field: str
    op: str
    value: str


_OPS = ("!=", ">=", "<=", "~=", "=~", "=", ">", "<", "~")
_FIELD_RE = re.compile(r"(https?://[^=!<>~]+|[A-Za-z_][\w.]*)")


def split_conditions(text: str) -> list[str]:
    """Split on ``;`` except an escaped ``\\;`` (a literal semicolon inside a value)."""
    parts, buf, i = [], [], 0
    while i < len(text):
        ch = text[i]
        if ch == "\\" and text[i + 1:i + 2] == ";":
            buf.append(";")
            i += 2
            continue
        if ch == ";":
            parts.append("".join(buf))
            buf = []
        else:
            buf.append(ch)
        i += 1
    parts.append("".join(buf))
    return [p for p in parts if p.strip()]


def parse_filter(values: Iterable[str]) -> list[Cond]:
    """All ``filter=`` parameters of a request (repeats allowed) -> conditions."""
    conds = []
    for text in values:
        for part in split_conditions(text):
            m = _FIELD_RE.match(part)
            rest = part[m.end():] if m else ""
            op = next((o for o in _OPS if rest.startswith(o)), None)
            if not m or op is None:
                raise ApiError(400, E_FILTER, f"Ошибка фильтрации: не удалось разобрать условие '{part}'",
                               parameter="filter")
            conds.append(Cond(m.group(1), op, rest[len(op):]))
    return conds


@dataclass
class FieldSpec:
    """A filterable field: ``type`` is string | uuid | datetime | href; ``get(i)`` the row's value
    (str, or MSK ms for datetimes); ``lookup(values)`` an optional fast path for ``=``."""

    type: str
    get: Callable[[int], Any]
    lookup: Callable[[list[str]], set[int]] | None = None


def _bad_value(field: str, value: str) -> ApiError:
    return ApiError(400, E_FILTER_VALUE, f"Неверное значение '{value}' параметра фильтрации '{field}'",
                    parameter=field)


def _convert(field: str, spec: FieldSpec, value: str) -> Any:
    if spec.type == "datetime":
        try:
            return parse_msk(value)
        except ValueError:
            raise ApiError(400, E_DATE, "Ошибка фильтрации: неверный формат даты параметра фильтрации "
                           f"'{field}': '{value}'", parameter=field) from None
    if spec.type == "uuid":
        if not is_uuid(value.lower()):
            raise _bad_value(field, value)
        return value.lower()
    if spec.type == "href":
        tail = value.rstrip("/").rsplit("/", 1)[-1].split("?")[0].lower()
        if not is_uuid(tail):
            raise _bad_value(field, value)
        return tail
    return value


def build_predicate(field: str, spec: FieldSpec, conds: list[Cond]) -> Callable[[int], bool] | None:
    """MoySklad's rules for one field: several ``=`` -> OR; several ``!=`` -> AND (NOT IN); the
    first of each ``> < >= <=`` counts; ``=`` with an inequality is an error; ``field=`` /
    ``field!=`` test emptiness; ``~ ~= =~`` are case-insensitive contains/starts/ends (strings)."""
    eq = [c.value for c in conds if c.op == "="]
    ne = [c.value for c in conds if c.op == "!="]
    ranges: dict[str, Any] = {}
    likes: list[tuple[str, str]] = []
    for c in conds:
        if c.op in (">", "<", ">=", "<="):
            if spec.type != "datetime":
                raise ApiError(400, E_FILTER, f"Ошибка фильтрации: оператор '{c.op}' не поддерживается "
                               f"для поля '{field}'", parameter=field)
            ranges.setdefault(c.op, _convert(field, spec, c.value))
        elif c.op in ("~", "~=", "=~"):
            if spec.type != "string":
                raise ApiError(400, E_FILTER, f"Ошибка фильтрации: оператор '{c.op}' не поддерживается "
                               f"для поля '{field}'", parameter=field)
            likes.append((c.op, c.value.lower()))
    if eq and ranges:
        raise ApiError(400, E_FILTER, f"Ошибка фильтрации: поле '{field}' нельзя одновременно "
                       "сравнивать на равенство и неравенство", parameter=field)
    eq_empty = "" in eq
    eq_vals = [_convert(field, spec, v) for v in eq if v != ""]
    ne_empty = "" in ne
    ne_vals = {_convert(field, spec, v) for v in ne if v != ""}

    if eq_vals and not eq_empty and spec.lookup and not (ne or ranges or likes):
        hits = spec.lookup(eq_vals)
        return hits.__contains__
    get = spec.get
    eq_set = set(eq_vals)
    check_eq = bool(eq)

    def pred(i: int) -> bool:
        v = get(i)
        if check_eq and not (v in eq_set or (eq_empty and (v is None or v == ""))):
            return False
        if ne_vals and v in ne_vals:
            return False
        if ne_empty and (v is None or v == ""):
            return False
        for op, bound in ranges.items():
            if v is None:
                return False
            if op == ">" and not v > bound or op == ">=" and not v >= bound \
                    or op == "<" and not v < bound or op == "<=" and not v <= bound:
                return False
        if likes:
            text = (v or "").lower()
            for op, needle in likes:
                if op == "~" and needle not in text or op == "~=" and not text.startswith(needle) \
                        or op == "=~" and not text.endswith(needle):
                    return False
        return True

    return pred


class Collection:
    """One ``entity/<type>`` list: which rows exist, which fields filter/sort, how a row renders."""

    def __init__(self, type_: str, *, kind: int, fields: dict[str, FieldSpec],
                 sort_keys: dict[str, Callable[[int], Any]], base: Callable[[set[bool]], list[int]],
                 render: Callable[["Renderer", int, frozenset], dict], search: Iterable[str] = ("name",),
                 exists: Callable[[int], bool] | None = None, id_ignores_archived: bool = True):
        self.type = type_
        self.kind = kind
        self.fields = fields
        self.sort_keys = sort_keys
        self.base = base
        self.render = render
        self.search_fields = tuple(search)
        self.exists = exists
        self.id_ignores_archived = id_ignores_archived


def select(coll: Collection, conds: list[Cond], order: str | None = None, search: str | None = None) -> list[int]:
    """Indices of the rows matching ``conds``/``search``, in ``order`` (default: creation order)."""
    groups: dict[str, list[Cond]] = collections.OrderedDict()
    for c in conds:
        groups.setdefault(c.field, []).append(c)
    archived: set[bool] = set()
    for c in groups.pop("archived", []):
        if c.op != "=" or c.value not in ("true", "false"):
            raise _bad_value("archived", c.value)
        archived.add(c.value == "true")
    if "id" in groups and coll.id_ignores_archived:
        archived = {True, False}   # documented for products: archived is ignored next to id
    rows = coll.base(archived or {False})
    # Cheap, selective conditions first (index lookups), then scans.
    for field in sorted(groups, key=lambda f: 0 if coll.fields.get(f) and coll.fields[f].lookup else 1):
        spec = coll.fields.get(field)
        if spec is None:
            raise ApiError(400, E_FILTER_VALUE, f"Неизвестное поле фильтрации '{field}' для сущности "
                           f"'{coll.type}'", parameter=field)
        pred = build_predicate(field, spec, groups[field])
        rows = [i for i in rows if pred(i)]
    if search:
        needle = search.lower()
        getters = [coll.fields[f].get for f in coll.search_fields if f in coll.fields]
        rows = [i for i in rows if any(needle in (g(i) or "").lower() for g in getters)]
    if order:
        keys = []
        for part in order.split(";"):
            if not part.strip():
                continue
            name, _, direction = part.partition(",")
            name, direction = name.strip(), (direction.strip() or "asc").lower()
            if name not in coll.sort_keys or direction not in ("asc", "desc"):
                raise ApiError(400, E_SORT, f"Неверное значение '{part}' параметра сортировки 'order', "
                               f"допустимые значения: '{', '.join(sorted(coll.sort_keys))}'", parameter="order")
            keys.append((coll.sort_keys[name], direction == "desc"))
        for key, desc in reversed(keys):   # stable sorts, least significant key first
            rows.sort(key=key, reverse=desc)
    return rows


def _flag_rows(flags: bytearray, archived: set[bool]) -> list[int]:
    if archived == {False}:
        return [i for i, f in enumerate(flags) if not f & (ARCHIVED | DELETED)]
    if archived == {True}:
        return [i for i, f in enumerate(flags) if f & (ARCHIVED | DELETED) == ARCHIVED]
    return [i for i, f in enumerate(flags) if not f & DELETED]


def _num(x: float) -> float | int:
    """Integral stock values go out as ints (``11``), fractional ones as floats (``46.5``)."""
    return int(x) if x == int(x) else x


def _jnum(x: float) -> str:
    """``_num`` as JSON text (the same text ``json.dumps`` would write)."""
    return str(int(x)) if x == int(x) else repr(x)


def _stock_row(assortment_id: str, store_id: str | None, key: str, value: float, by_store: bool) -> str:
    """One row of a ``/current`` report as JSON text. These reports reach 250k rows at 100k
    products; text fragments need a fraction of the memory of dicts."""
    if not by_store:
        return f'{{"assortmentId":"{assortment_id}","{key}":{_jnum(value)}}}'
    store = f'"{store_id}"' if store_id is not None else "null"
    return f'{{"assortmentId":"{assortment_id}","storeId":{store},"{key}":{_jnum(value)}}}'


# ---------------------------------------------------------------------------------------------
# Rendering
# ---------------------------------------------------------------------------------------------
class Renderer:
    """Builds entity JSON for one request's base URL (hrefs point wherever the client called)."""

    def __init__(self, cat: Catalog, api: str):
        self.cat = cat
        self.api = api
        self.currency = {"meta": self.meta("currency", cat.id_of(CURRENCY, 0), metadata=True)}
        self.uom = {"meta": self.meta("uom", cat.id_of(UOM, 0), metadata=True)}
        self.owner = {"meta": self.meta("employee", cat.id_of(EMPLOYEE, 0), metadata=True)}
        self.group = {"meta": {"href": f"{api}/entity/group/{cat.id_of(GROUP, 0)}",
                               "metadataHref": f"{api}/entity/group/metadata", "type": "group", "mediaType": MEDIA}}
        self.price_types = [self.price_type(k) for k in range(len(PRICE_TYPES))]
        self._folder_refs: dict[int, dict] = {}
        self._store_refs: dict[int, dict] = {}
        self.product_metadata = f"{api}/entity/product/metadata"
        self.variant_metadata = f"{api}/entity/variant/metadata"

    def meta(self, type_: str, id_: str, *, metadata: bool = False, ui: str | None = None,
             path: str = "entity") -> dict:
        m = {"href": f"{self.api}/{path}/{type_}/{id_}"}
        if metadata:
            m["metadataHref"] = f"{self.api}/{path}/{type_}/metadata"
        m["type"] = type_
        m["mediaType"] = MEDIA
        if ui:
            m["uuidHref"] = ui
        return m

    def price_type(self, k: int) -> dict:
        pid = self.cat.id_of(PRICETYPE, k)
        return {"meta": {"href": f"{self.api}/context/companysettings/pricetype/{pid}", "type": "pricetype",
                         "mediaType": MEDIA},
                "id": pid, "name": PRICE_TYPES[k][0], "externalCode": self.cat.codec(PRICETYPE, True).encode(k)}

    def folder_ref(self, f: int) -> dict:
        ref = self._folder_refs.get(f)
        if ref is None:
            cat = self.cat
            ref = self._folder_refs[f] = {"meta": self.meta(
                "productfolder", cat.id_of(FOLDER, f), metadata=True,
                ui=f"{UI_BASE}good/edit?id={cat.ui_id_of(FOLDER, f)}")}
        return ref

    def store_ref(self, s: int) -> dict:
        ref = self._store_refs.get(s)
        if ref is None:
            cat = self.cat
            ref = self._store_refs[s] = {"meta": self.meta(
                "store", cat.id_of(STORE, s), metadata=True, ui=f"{UI_BASE}warehouse/edit?id={cat.ui_id_of(STORE, s)}")}
        return ref

    def sale_prices(self, price: int | None) -> list[dict]:
        """A row's salePrices: none for an unpriced item; in the account's order, or wholesale first
        when the account is set up so (the order of a row is not the account's)."""
        if price is None:
            return []
        rows = [{"value": float(v), "currency": self.currency, "priceType": pt}
                for v, pt in zip(self.cat.sale_prices(price), self.price_types)]
        return rows[::-1] if self.cat.wholesale_first else rows

    def variant_sale_prices(self, j: int) -> list[dict]:
        cat = self.cat
        own, p = cat.v_price[j], cat.v_product[j]
        if own:
            return self.sale_prices(own)
        if not cat.variant_price_fallback or p in cat.p_unpriced:
            return []
        # An empty own price list shows the product's prices (documented fallback).
        return self.sale_prices(cat.p_price[p])

    # -- entities ------------------------------------------------------------------------------
    def product_meta(self, i: int) -> dict:
        cat = self.cat
        pid = cat.id_of(PRODUCT, i)
        return {"href": f"{self.api}/entity/product/{pid}", "metadataHref": self.product_metadata,
                "type": "product", "mediaType": MEDIA, "uuidHref": f"{UI_BASE}good/edit?id={cat.ui_id_of(PRODUCT, i)}"}

    def variant_meta(self, j: int) -> dict:
        cat = self.cat
        vid = cat.id_of(VARIANT, j)
        return {"href": f"{self.api}/entity/variant/{vid}", "metadataHref": self.variant_metadata,
                "type": "variant", "mediaType": MEDIA, "uuidHref": f"{UI_BASE}feature/edit?id={cat.ui_id_of(VARIANT, j)}"}

    def product(self, i: int, expand: frozenset = frozenset()) -> dict:
        cat = self.cat
        meta = self.product_meta(i)
        vat, vat_enabled = cat.p_vat(i)
        row: dict[str, Any] = {
            "meta": meta,
            "id": meta["href"].rsplit("/", 1)[1],
            "accountId": cat.account_id,
            "owner": self.owner,
            "shared": True,
            "group": self.group,
            "updated": format_msk(cat.p_updated[i]),
            "name": cat.p_name(i),
            "code": cat.p_code(i),
            "externalCode": cat.p_external_code(i),
            "archived": bool(cat.p_flags[i] & ARCHIVED),
            "pathName": cat.p_path_name(i),
        }
        description = cat.p_description(i)
        if description:
            row["description"] = description
        folder = cat.p_folder[i]
        if folder >= 0:
            row["productFolder"] = self.folder(folder) if "productFolder" in expand else self.folder_ref(folder)
        row.update({
            "useParentVat": False, "vat": vat, "vatEnabled": vat_enabled,
            "effectiveVat": vat, "effectiveVatEnabled": vat_enabled,
            "uom": self.uom,
            "images": {"meta": {"href": f"{meta['href']}/images", "type": "image", "mediaType": MEDIA,
                                "size": cat.p_images(i), "limit": 1000, "offset": 0}},
            "minPrice": {"value": 0.0, "currency": self.currency},
            "salePrices": self.sale_prices(None if i in cat.p_unpriced else cat.p_price[i]),
            "buyPrice": {"value": float(cat.p_buy_price(i)), "currency": self.currency},
            "barcodes": cat.p_barcodes(i),
            "paymentItemType": "GOOD",
            "discountProhibited": False,
            "weight": cat.p_weight(i),
            "volume": 0.0,
            "variantsCount": cat.live_variant_count(i) if cat.p_vcount[i] else 0,
            "isSerialTrackable": False,
            "trackingType": "NOT_TRACKED",
        })
        article = cat.p_article(i)
        if article:
            row["article"] = article
        return row

    def variant(self, j: int, expand: frozenset = frozenset()) -> dict:
        cat = self.cat
        meta = self.variant_meta(j)
        p = cat.v_product[j]
        (color, _), size = cat.v_characteristics(j)
        return {
            "meta": meta,
            "id": meta["href"].rsplit("/", 1)[1],
            "accountId": cat.account_id,
            "updated": format_msk(cat.v_updated[j]),
            "name": cat.v_name(j),
            "code": cat.v_code(j),
            "externalCode": cat.v_external_code(j),
            "archived": bool(cat.v_flags[j] & ARCHIVED),
            "characteristics": [self.characteristic(0, "Цвет", color), self.characteristic(1, "Размер", size)],
            "images": {"meta": {"href": f"{meta['href']}/images", "type": "image", "mediaType": MEDIA,
                                "size": 0, "limit": 1000, "offset": 0}},
            "minPrice": {"value": 0.0, "currency": self.currency},
            "salePrices": self.variant_sale_prices(j),
            "buyPrice": {"value": float(cat.p_buy_price(p)), "currency": self.currency},
            "barcodes": cat.v_barcodes(j),
            "discountProhibited": False,
            "product": self.product(p) if "product" in expand else {"meta": self.product_meta(p)},
        }

    def characteristic(self, k: int, name: str, value: str) -> dict:
        cid = self.cat.id_of(CHARACTERISTIC, k)
        return {"meta": {"href": f"{self.api}/entity/variant/metadata/characteristics/{cid}",
                         "type": "attributemetadata", "mediaType": MEDIA},
                "id": cid, "name": name, "value": value}

    def folder(self, f: int, expand: frozenset = frozenset()) -> dict:
        cat = self.cat
        folder = cat.folders[f]
        ref = self.folder_ref(f)
        row = {"meta": ref["meta"], "id": cat.id_of(FOLDER, f), "accountId": cat.account_id, "owner": self.owner,
               "shared": True, "group": self.group, "updated": format_msk(folder.updated), "name": folder.name,
               "code": folder.code, "externalCode": folder.external_code, "archived": folder.archived,
               "pathName": folder.path_name, "useParentVat": True, "effectiveVat": 20, "effectiveVatEnabled": True}
        if folder.parent >= 0:
            row["productFolder"] = self.folder_ref(folder.parent)
        return row

    def store(self, s: int, expand: frozenset = frozenset()) -> dict:
        cat = self.cat
        store = cat.stores[s]
        return {"meta": self.store_ref(s)["meta"], "id": cat.id_of(STORE, s), "accountId": cat.account_id,
                "owner": self.owner, "shared": True, "group": self.group, "updated": format_msk(store.updated),
                "name": store.name, "code": store.code, "externalCode": store.external_code,
                "archived": store.archived, "address": store.address, "pathName": ""}

    def organization(self, k: int = 0, expand: frozenset = frozenset()) -> dict:
        cat = self.cat
        oid = cat.id_of(ORGANIZATION, k)
        return {"meta": self.meta("organization", oid, metadata=True,
                                  ui=f"{UI_BASE}mycompany/edit?id={cat.ui_id_of(ORGANIZATION, k)}"),
                "id": oid, "accountId": cat.account_id, "owner": self.owner, "shared": True, "group": self.group,
                "updated": format_msk(cat.epoch_ms - 400 * DAY_MS), "name": "ООО «Песочница»",
                "externalCode": cat.codec(ORGANIZATION, True).encode(k), "archived": False,
                "companyType": "legal", "legalTitle": "Общество с ограниченной ответственностью «Песочница»",
                "inn": "7700000000", "kpp": "770001001", "ogrn": "1027700000000",
                "actualAddress": "г. Москва, ул. Тестовая, 1", "isEgaisEnable": False, "payerVat": True}

    def currency_row(self, k: int = 0, expand: frozenset = frozenset()) -> dict:
        cat = self.cat
        return {"meta": self.currency["meta"], "id": cat.id_of(CURRENCY, k), "system": True, "name": "руб",
                "fullName": "Российский рубль", "rate": 1.0, "multiplicity": 1, "indirect": False,
                "rateUpdateType": "manual", "code": "643", "isoCode": "RUB",
                "majorUnit": {"gender": "masculine", "s1": "рубль", "s2": "рубля", "s5": "рублей"},
                "minorUnit": {"gender": "feminine", "s1": "копейка", "s2": "копейки", "s5": "копеек"},
                "archived": False, "default": True}

    def employee(self) -> dict:
        cat = self.cat
        return {"meta": self.owner["meta"], "id": cat.id_of(EMPLOYEE, 0), "accountId": cat.account_id,
                "name": "Администратор", "uid": "admin@sandbox", "email": "admin@sandbox.example",
                "archived": False, "isAdmin": True}


# ---------------------------------------------------------------------------------------------
# The emulator
# ---------------------------------------------------------------------------------------------
class MoySkladEmulator(ApiEmulator):
    name = "moysklad"
    api_root = API_ROOT
    require_gzip = True

    def __init__(self, catalog: Catalog | None = None, *, products: int = 2000, variant_share: float = 0.25,
                 variants_per_product: int = 3, stores: int = 3, seed: int = 1,
                 token: str | None = "sandbox-token", login: str | None = "admin@sandbox",
                 password: str | None = "sandbox", rate_limit: bool = True, request_weight: int = 4,
                 heavy_weight: int = HEAVY_WEIGHT, budget: int = 45, window: float = 3.0, max_parallel: int = 5,
                 latency_ms: float = 0.0, rate_header_unit: str = "units", strict_accept: bool = False,
                 gzip_level: int = 1, epoch: str | None = None) -> None:
        super().__init__(credentials=Credentials(token, login, password), rate_limit=rate_limit,
                         request_weight=request_weight, budget=budget, window=window, max_parallel=max_parallel,
                         latency_ms=latency_ms, gzip_level=gzip_level)
        if rate_header_unit not in ("units", "requests"):
            raise ValueError("rate_header_unit must be 'units' or 'requests'")
        # `epoch`: generated `updated` values lie before it (default: a fixed date, so the demo
        # catalog is the same every day; tests pass one derived from now)
        self.catalog = catalog or Catalog(products, variant_share, variants_per_product, stores, seed,
                                          **({"epoch": epoch} if epoch else {}))
        self.heavy_weight = heavy_weight
        self.rate_header_unit = rate_header_unit
        self.strict_accept = strict_accept
        self._cache: collections.OrderedDict = collections.OrderedDict()
        self.collections = self._build_collections()
        self._install_routes()
        self._install_control()
        # Orders, counterparties, demands, webhooks and notifications (issue 3).
        from .moysklad_orders import install as install_orders

        install_orders(self)

    # -- collections ---------------------------------------------------------------------------
    def _build_collections(self) -> dict[str, Collection]:
        cat = self.catalog

        def id_spec(kind: int) -> FieldSpec:
            codec = cat.codecs[(kind, False)]

            def lookup(values: list[str]) -> set[int]:
                out = set()
                for v in values:
                    idx = codec.decode(v)
                    if idx is not None:
                        out.add(idx)
                return out
            return FieldSpec("uuid", codec.encode, lookup)

        def variants_of_products(values: list[str]) -> set[int]:
            out: set[int] = set()
            for v in values:
                hit = cat.resolve(v, PRODUCT)
                if hit is None:   # unknown or deleted: a deleted product has no variants left
                    continue
                out.update(cat.variants_of(hit[1]))
            return out

        product_id = cat.codecs[(PRODUCT, False)]
        product_fields = {
            "id": id_spec(PRODUCT),
            "name": FieldSpec("string", cat.p_name),
            "code": FieldSpec("string", cat.p_code, partial(cat.lookup, PRODUCT, "code")),
            "article": FieldSpec("string", cat.p_article, partial(cat.lookup, PRODUCT, "article")),
            "externalCode": FieldSpec("string", cat.p_external_code, partial(cat.lookup, PRODUCT, "externalCode")),
            "description": FieldSpec("string", cat.p_description),
            "pathName": FieldSpec("string", cat.p_path_name),
            "barcode": FieldSpec("string", cat.p_barcode),
            "updated": FieldSpec("datetime", cat.p_updated.__getitem__),
            "productFolder": FieldSpec("href", lambda i: cat.id_of(FOLDER, cat.p_folder[i]) if cat.p_folder[i] >= 0 else None),
        }
        variant_fields = {
            "id": id_spec(VARIANT),
            "name": FieldSpec("string", cat.v_name),
            "code": FieldSpec("string", cat.v_code, partial(cat.lookup, VARIANT, "code")),
            "externalCode": FieldSpec("string", cat.v_external_code, partial(cat.lookup, VARIANT, "externalCode")),
            "barcode": FieldSpec("string", cat.v_barcode),
            "updated": FieldSpec("datetime", cat.v_updated.__getitem__),
            "productid": FieldSpec("uuid", lambda j: product_id.encode(cat.v_product[j]), variants_of_products),
            "product": FieldSpec("href", lambda j: product_id.encode(cat.v_product[j]), variants_of_products),
        }

        def small(type_: str, kind: int, items: Callable[[], list], render, *, name, code, ext, updated,
                  path=None, archived=lambda o: False, parent=None) -> Collection:
            fields = {"id": id_spec(kind), "name": FieldSpec("string", lambda i: name(items()[i])),
                      "code": FieldSpec("string", lambda i: code(items()[i])),
                      "externalCode": FieldSpec("string", lambda i: ext(items()[i])),
                      "updated": FieldSpec("datetime", lambda i: updated(items()[i]))}
            if path:
                fields["pathName"] = FieldSpec("string", lambda i: path(items()[i]))
            if parent:
                fields["productFolder"] = FieldSpec("href", lambda i: parent(items()[i]))

            def base(arch: set[bool]) -> list[int]:
                return [i for i, o in enumerate(items()) if archived(o) in arch and not getattr(o, "deleted", False)]
            sort_keys = {"id": cat.codecs[(kind, False)].key, "name": fields["name"].get, "code": fields["code"].get,
                         "externalCode": fields["externalCode"].get, "updated": fields["updated"].get}
            return Collection(type_, kind=kind, fields=fields, sort_keys=sort_keys, base=base, render=render,
                              exists=lambda i: 0 <= i < len(items()) and not getattr(items()[i], "deleted", False),
                              id_ignores_archived=False)

        folders = lambda: cat.folders  # noqa: E731
        stores = lambda: cat.stores  # noqa: E731
        return {
            "product": Collection(
                "product", kind=PRODUCT, fields=product_fields, base=lambda a: _flag_rows(cat.p_flags, a),
                render=Renderer.product, search=("name", "code", "article"),
                exists=lambda i: cat.exists(PRODUCT, i),
                sort_keys={"id": product_id.key, "updated": cat.p_updated.__getitem__, "name": cat.p_name,
                           "code": cat.p_code, "externalCode": cat.p_external_code, "article": cat.p_article,
                           "pathName": cat.p_path_name, "archived": lambda i: cat.p_flags[i] & ARCHIVED}),
            "variant": Collection(
                "variant", kind=VARIANT, fields=variant_fields, base=lambda a: _flag_rows(cat.v_flags, a),
                render=Renderer.variant, search=("name", "code"), exists=lambda j: cat.exists(VARIANT, j),
                sort_keys={"id": cat.codecs[(VARIANT, False)].key, "updated": cat.v_updated.__getitem__,
                           "name": cat.v_name, "code": cat.v_code, "externalCode": cat.v_external_code,
                           "archived": lambda j: cat.v_flags[j] & ARCHIVED}),
            "productfolder": small(
                "productfolder", FOLDER, folders, Renderer.folder, name=lambda o: o.name, code=lambda o: o.code,
                ext=lambda o: o.external_code, updated=lambda o: o.updated, path=lambda o: o.path_name,
                archived=lambda o: o.archived,
                parent=lambda o: cat.id_of(FOLDER, o.parent) if o.parent >= 0 else None),
            "store": small(
                "store", STORE, stores, Renderer.store, name=lambda o: o.name, code=lambda o: o.code,
                ext=lambda o: o.external_code, updated=lambda o: o.updated, path=lambda o: "",
                archived=lambda o: o.archived),
            "organization": small(
                "organization", ORGANIZATION, lambda: [0], Renderer.organization, name=lambda o: "ООО «Песочница»",
                code=lambda o: "", ext=lambda o: cat.codec(ORGANIZATION, True).encode(0),
                updated=lambda o: cat.epoch_ms - 400 * DAY_MS),
            "currency": small(
                "currency", CURRENCY, lambda: [0], Renderer.currency_row, name=lambda o: "руб", code=lambda o: "643",
                ext=lambda o: "", updated=lambda o: cat.epoch_ms - 400 * DAY_MS),
        }

    # -- hooks (formats of the real API) -------------------------------------------------------
    def render_error(self, status: int, code: int | None, message: str, parameter: str | None = None,
                     headers: Iterable[tuple[str, str]] = ()) -> Response:
        error: dict[str, Any] = {"error": message}
        if parameter:
            error["parameter"] = parameter
        if code is not None:
            error["code"] = code
            error["moreInfo"] = MORE_INFO.format(code=code)
        return json_response({"errors": [error]}, status, headers)

    def encoding_error(self, request: Request) -> Response:
        return empty_response(415)   # documented: 415 with an empty body

    def auth_error(self, request: Request, reason: str) -> Response:
        return self.render_error(401, E_AUTH, f"Ошибка аутентификации: {reason}",
                                 headers=[("X-Lognex-Auth", str(E_AUTH)),
                                          ("X-Lognex-Auth-Message", "authentication failed")])

    def check_request(self, request: Request) -> Response | None:
        accept = request.header("accept")
        if self.strict_accept and accept is not None:
            if accept.replace(" ", "").lower() != ACCEPT_VALUE:
                return self.render_error(400, E_ACCEPT, "Неверное значение заголовка 'Accept'. Поддерживается "
                                         "только значение 'application/json;charset=utf-8'")
        return None

    def weight_for(self, request: Request, route: Route | None) -> int:
        if route is not None and route.weight == HEAVY_WEIGHT:
            return self.heavy_weight
        return super().weight_for(request, route)

    def _rate_headers(self, decision: LimitDecision | None) -> list[tuple[str, str]]:
        budget = self.limiter.budget
        remaining = decision.remaining if decision else budget
        window_ms = decision.window_ms if decision else int(self.limiter.window * 1000)
        if self.rate_header_unit == "requests":
            weight = max(1, (decision.weight if decision and decision.weight else self.request_weight))
            budget, remaining = budget // weight, remaining // weight
        return [("X-RateLimit-Limit", str(budget)), ("X-RateLimit-Remaining", str(remaining)),
                ("X-Lognex-Retry-TimeInterval", str(window_ms))]

    def success_headers(self, request: Request, decision: LimitDecision | None) -> list[tuple[str, str]]:
        return self._rate_headers(decision)

    def rate_limited_response(self, request: Request, decision: LimitDecision) -> Response:
        headers = self._rate_headers(decision)
        headers[1] = ("X-RateLimit-Remaining", "0")
        headers += [("X-Lognex-Reset", str(decision.reset_ms)), ("X-Lognex-Retry-After", str(decision.retry_after_ms))]
        return self.render_error(429, E_RATE, "Превышено ограничение на количество запросов в единицу времени",
                                 headers=headers)

    def parallel_limited_response(self, request: Request, decision: LimitDecision) -> Response:
        # No X-Lognex-Retry-After: that is how clients tell the parallel cap from the budget.
        return self.render_error(429, E_PARALLEL, "Превышено ограничение на количество параллельных запросов",
                                 headers=self._rate_headers(decision))

    def fault_response(self, request: Request, fault: Fault) -> Response:
        if fault.body is not None:
            return super().fault_response(request, fault)
        status = fault.status
        code = fault.error_code if fault.error_code is not None else _DEFAULT_FAULT_CODES.get(status)
        message = fault.message or _DEFAULT_FAULT_MESSAGES.get(status, "Ошибка")
        headers = list(fault.headers.items())
        if status == 429:
            if code == E_PARALLEL:
                message = fault.message or "Превышено ограничение на количество параллельных запросов"
                headers += self._rate_headers(None)
            else:
                retry = fault.retry_after_ms if fault.retry_after_ms is not None else 1000
                headers += [("X-RateLimit-Limit", str(self.limiter.budget)), ("X-RateLimit-Remaining", "0"),
                            ("X-Lognex-Retry-TimeInterval", str(int(self.limiter.window * 1000))),
                            ("X-Lognex-Reset", str(retry)), ("X-Lognex-Retry-After", str(retry))]
        elif status == 401:
            headers += [("X-Lognex-Auth", str(E_AUTH)), ("X-Lognex-Auth-Message", "authentication failed")]
        return self.render_error(status, code, message, headers=headers)

    def not_found(self, request: Request, path: str) -> Response:
        parts = path.strip("/").split("/")
        if len(parts) >= 2 and parts[0] == "entity" and not any(
                r.template.startswith(f"entity/{parts[1]}") for r in self.router.routes):
            return self.render_error(404, E_UNKNOWN_TYPE, f"Неизвестный тип: '{parts[1]}'")
        return self.render_error(404, E_UNKNOWN_PATH, f"Неопознанный путь: {path}")

    def method_not_allowed(self, request: Request, path: str) -> Response:
        return self.render_error(405, E_METHOD, f"Операция {request.method} не поддерживается для данного ресурса")

    # -- helpers -------------------------------------------------------------------------------
    def api_base(self, request: Request) -> str:
        return f"{request.base}/{API_ROOT.rstrip('/')}"

    def _json(self, request: Request, obj: Any, status: int = 200) -> Response:
        pretty = (request.header("lognex-pretty-print-json") or "").lower() == "true"
        return json_response(obj, status, pretty=pretty)

    def _paging(self, request: Request, max_limit: int = PAGE_MAX) -> tuple[int, int]:
        def number(name: str, default: int) -> int:
            raw = request.arg(name)
            if raw in (None, ""):
                return default
            try:
                value = int(raw)
            except ValueError:
                raise ApiError(400, E_PARAMS, f"Неверно заданы параметры запроса: '{name}'='{raw}'",
                               parameter=name) from None
            if value < 0:
                raise ApiError(400, E_PARAMS, f"Параметр '{name}' не может быть отрицательным", parameter=name)
            return value
        limit, offset = number("limit", PAGE_MAX), number("offset", 0)
        if limit > max_limit:
            raise ApiError(400, E_PARAMS, f"Значение параметра 'limit' должно быть не больше {max_limit}",
                           parameter="limit")
        return limit, offset

    def _cached(self, key: tuple, compute: Callable[[], list[int]]) -> Sequence[int]:
        """Query results per (query, data version): paging through a big filtered/sorted list
        costs one selection, not one per page. Any edit bumps the version (no snapshot, like
        the real API: rows may shift between pages)."""
        hit = self._cache.get(key)
        if hit is not None:
            self._cache.move_to_end(key)
            return hit
        rows = compute()
        if isinstance(rows, list):
            rows = array("q", rows)   # 8 bytes per row instead of ~36 for a list of ints
        self._cache[key] = rows
        if len(self._cache) > 32:
            self._cache.popitem(last=False)
        return rows

    def _context(self, r: Renderer) -> dict:
        return {"employee": {"meta": {"href": f"{r.api}/context/employee", "metadataHref": f"{r.api}/entity/employee/metadata",
                                      "type": "employee", "mediaType": MEDIA}}}

    def _collection_envelope(self, request: Request, r: Renderer, type_: str, href: str, rows: list,
                             page: Page) -> dict:
        meta: dict[str, Any] = {"href": page_href(href, request.query, page.limit, page.offset), "type": type_,
                                "mediaType": MEDIA, "size": page.size, "limit": page.limit, "offset": page.offset}
        if page.has_next:
            meta["nextHref"] = page_href(href, request.query, page.limit, page.offset + page.limit)
        if page.has_previous:
            meta["previousHref"] = page_href(href, request.query, page.limit, max(0, page.offset - page.limit))
        return {"context": self._context(r), "meta": meta, "rows": rows}

    @staticmethod
    def _expand(request: Request, limit: int | None) -> frozenset:
        raw = request.arg("expand")
        if not raw or (limit is not None and limit > EXPAND_PAGE_MAX):
            return frozenset()   # documented: silently ignored above limit=100
        return frozenset(p.strip() for p in raw.split(",") if p.strip())

    # -- routes --------------------------------------------------------------------------------
    def _install_routes(self) -> None:
        add = self.router.add
        add("GET", "entity/product/metadata", self._product_metadata)
        add("GET", "entity/variant/metadata", self._variant_metadata)
        for type_ in self.collections:
            add("GET", f"entity/{type_}", partial(self._list, type_))
            add("GET", f"entity/{type_}/{{id}}", partial(self._get, type_))
        add("GET", "context/employee", lambda req: self._json(req, Renderer(self.catalog, self.api_base(req)).employee()))
        add("GET", "context/companysettings", self._company_settings)
        add("GET", "context/companysettings/pricetype", self._price_types)
        add("GET", "context/companysettings/pricetype/default", self._price_type_default)
        add("GET", "report/stock/all/current", partial(self._stock_current, False))
        add("GET", "report/stock/bystore/current", partial(self._stock_current, True))
        add("GET", "report/stock/all", self._stock_all, weight=HEAVY_WEIGHT)
        add("GET", "report/stock/bystore", self._stock_bystore, weight=HEAVY_WEIGHT)

    def _list(self, type_: str, request: Request) -> Response:
        coll = self.collections[type_]
        limit, offset = self._paging(request)
        conds = parse_filter(request.args("filter"))
        order, search = request.arg("order"), request.arg("search")
        expand = self._expand(request, limit)
        cat = self.catalog
        with cat.lock:
            key = ("list", type_, tuple(conds), order, search, cat.version)
            rows_idx = self._cached(key, lambda: select(coll, conds, order, search))
            page = Page(limit, offset, len(rows_idx))
            r = Renderer(cat, self.api_base(request))
            rows = [coll.render(r, i, expand) for i in rows_idx[page.start:page.stop]]
        return self._json(request, self._collection_envelope(request, r, type_, f"{r.api}/entity/{type_}", rows, page))

    def _get(self, type_: str, request: Request) -> Response:
        coll = self.collections[type_]
        raw = request.params["id"]
        ident = raw.lower()
        if not is_uuid(ident):
            raise ApiError(400, E_UUID, f"Неверный формат UUID: '{raw}'")
        cat = self.catalog
        with cat.lock:
            decoded = cat.decode(ident)
            if decoded is not None and decoded[0] == coll.kind and coll.exists(decoded[1]):
                kind, idx, ui = decoded
                r = Renderer(cat, self.api_base(request))
                if ui:   # a UI uuid from meta.uuidHref: the API redirects to the API id
                    location = f"{r.api}/entity/{type_}/{cat.id_of(kind, idx)}"
                    if request.query_string:
                        location += "?" + request.query_string
                    return Response(308, b"", [("Location", location)])
                return self._json(request, coll.render(r, idx, self._expand(request, None)))
        raise ApiError(404, E_NOT_FOUND, f"Объект с типом '{type_}' и идентификатором '{raw}' не найден")

    def _product_metadata(self, request: Request) -> Response:
        api = self.api_base(request)
        return self._json(request, {"meta": {"href": f"{api}/entity/product/metadata", "mediaType": MEDIA},
                                    "attributes": {"meta": {"href": f"{api}/entity/product/metadata/attributes",
                                                            "type": "attributemetadata", "mediaType": MEDIA,
                                                            "size": 0, "limit": 1000, "offset": 0}},
                                    "createShared": True})

    def _variant_metadata(self, request: Request) -> Response:
        r = Renderer(self.catalog, self.api_base(request))
        chars = []
        for k, name in enumerate(("Цвет", "Размер")):
            c = r.characteristic(k, name, "")
            c.pop("value")
            c.update({"type": "string", "required": False})
            chars.append(c)
        return self._json(request, {"meta": {"href": f"{r.api}/entity/variant/metadata", "mediaType": MEDIA},
                                    "characteristics": chars})

    def _company_settings(self, request: Request) -> Response:
        r = Renderer(self.catalog, self.api_base(request))
        return self._json(request, {"meta": {"href": f"{r.api}/context/companysettings",
                                             "metadataHref": f"{r.api}/context/companysettings/metadata",
                                             "type": "companysettings", "mediaType": MEDIA},
                                    "currency": r.currency, "priceTypes": r.price_types,
                                    "discountStrategy": "bySum", "checkShippingStock": True,
                                    "checkMinPrice": False, "useRecycleBin": True, "useCompanyAddress": True})

    def _price_types(self, request: Request) -> Response:
        r = Renderer(self.catalog, self.api_base(request))
        return self._json(request, r.price_types)

    def _price_type_default(self, request: Request) -> Response:
        r = Renderer(self.catalog, self.api_base(request))
        return self._json(request, r.price_types[0])

    # -- stock reports -------------------------------------------------------------------------
    _STOCK_VALUE: dict[str, Callable[[float, float, float], float]] = {
        "stock": lambda st, rs, it: st,
        "freeStock": lambda st, rs, it: st - rs,
        "quantity": lambda st, rs, it: st - rs + it,
        "reserve": lambda st, rs, it: rs,
        "inTransit": lambda st, rs, it: it,
    }

    def _current_filters(self, request: Request) -> tuple[set[tuple[int, int]] | None, set[int] | None]:
        """``assortmentId``/``storeId`` filters: plain UUIDs, ``=`` only, comma lists, repeats."""
        assortment: set[tuple[int, int]] | None = None
        stores: set[int] | None = None
        cat = self.catalog
        for cond in parse_filter(request.args("filter")):
            if cond.field not in ("assortmentId", "storeId"):
                raise ApiError(400, E_FILTER_VALUE, f"Неизвестное поле фильтрации '{cond.field}'", parameter=cond.field)
            if cond.op != "=":
                raise ApiError(400, E_FILTER, f"Ошибка фильтрации: оператор '{cond.op}' не поддерживается "
                               f"для поля '{cond.field}'", parameter=cond.field)
            for value in (v.strip().lower() for v in cond.value.split(",")):
                if not is_uuid(value):
                    raise _bad_value(cond.field, value)
                decoded = cat.decode(value)
                if cond.field == "storeId":
                    stores = stores if stores is not None else set()
                    if decoded and decoded[0] == STORE and not decoded[2] and decoded[1] < len(cat.stores):
                        stores.add(decoded[1])
                else:
                    assortment = assortment if assortment is not None else set()
                    if decoded and decoded[0] in (PRODUCT, VARIANT) and not decoded[2]:
                        assortment.add((decoded[0], decoded[1]))
        return assortment, stores

    def _gone(self, kind: int, idx: int) -> bool:
        """Deleted or archived items report 0 in ``changedSince`` answers and are left out of
        full ones (the docs' "deleted or archived ... come back as 0")."""
        cat = self.catalog
        if not cat.exists(kind, idx):
            return True
        flags = cat.p_flags if kind == PRODUCT else cat.v_flags
        return bool(flags[idx] & ARCHIVED)

    def _stock_current(self, by_store: bool, request: Request) -> Response:
        stock_type = request.arg("stockType") or "stock"
        if stock_type not in STOCK_TYPES:
            raise ApiError(400, E_PARAMS, f"Неверное значение параметра 'stockType': '{stock_type}', "
                           f"допустимые значения: {', '.join(STOCK_TYPES)}", parameter="stockType")
        zero = "zeroLines" in (request.arg("include") or "").split(",")
        assortment, stores = self._current_filters(request)
        since_raw = request.arg("changedSince")
        cat = self.catalog
        with cat.lock:
            if since_raw is not None:
                try:
                    since = parse_msk(since_raw)
                except ValueError:
                    raise ApiError(400, E_DATE, f"Неверный формат даты параметра 'changedSince': '{since_raw}'",
                                   parameter="changedSince") from None
                now = cat.now_ms()
                if since > now:
                    raise ApiError(400, E_PARAMS, "Значение параметра 'changedSince' не может быть больше "
                                   "текущего момента", parameter="changedSince")
                if now - since > DAY_MS:
                    raise ApiError(400, E_PARAMS, "Значение параметра 'changedSince' не может быть раньше "
                                   "текущего момента более чем на 24 часа", parameter="changedSince")
                rows = self._stock_changed(by_store, stock_type, since, assortment, stores)
            else:
                rows = self._stock_full(by_store, stock_type, zero, assortment, stores)
        text = "[" + ",".join(rows) + "]"
        if (request.header("lognex-pretty-print-json") or "").lower() == "true":
            return self._json(request, json.loads(text))
        return Response(200, text.encode("utf-8"), content_type=JSON_CONTENT_TYPE)

    def _stock_full(self, by_store: bool, stock_type: str, zero: bool,
                    assortment: set[tuple[int, int]] | None, stores: set[int] | None) -> list[str]:
        cat = self.catalog
        value = self._STOCK_VALUE[stock_type]
        row = _stock_row
        n_stores = len(cat.stores)
        sel = sorted(stores) if stores is not None else list(range(n_stores))
        with_null = stores is None
        store_ids = [cat.id_of(STORE, s) for s in range(n_stores)]
        out: list[str] = []
        append = out.append
        for kind in (PRODUCT, VARIANT):
            table = cat.stock_tables[kind]
            st, rs, mv, transit = table.stock, table.reserve, table.moved, table.in_transit
            flags = cat.p_flags if kind == PRODUCT else cat.v_flags
            codec = cat.codecs[(kind, False)]
            null_res = cat.null_reserve
            if assortment is None:
                items: Iterable[int] = range(len(flags))
            else:
                items = sorted(i for k, i in assortment if k == kind and i < len(flags))
            for i in items:
                if flags[i] & (ARCHIVED | DELETED):
                    continue
                base = i * n_stores
                nr = null_res.get((kind, i)) if with_null else None
                if by_store:
                    aid = None
                    for s in sel:
                        c = base + s
                        if not mv[c]:
                            continue
                        v = value(st[c], rs[c], transit.get(c, 0.0))
                        if v or zero:
                            aid = aid or codec.encode(i)
                            append(row(aid, store_ids[s], stock_type, v, True))
                    if nr is not None:
                        v = value(0.0, nr, 0.0)
                        if v or zero:
                            append(row(aid or codec.encode(i), None, stock_type, v, True))
                else:
                    moved = False
                    tst = trs = tit = 0.0
                    for s in sel:
                        c = base + s
                        if mv[c]:
                            moved = True
                            tst += st[c]
                            trs += rs[c]
                            tit += transit.get(c, 0.0)
                    if nr is not None:
                        moved = True
                        trs += nr
                    if moved:
                        v = value(tst, trs, tit)
                        if v or zero:
                            append(row(codec.encode(i), None, stock_type, v, False))
        return out

    def _stock_changed(self, by_store: bool, stock_type: str, since: int,
                       assortment: set[tuple[int, int]] | None, stores: set[int] | None) -> list[str]:
        """Current absolute values of cells changed since ``since``; zero lines always included."""
        cat = self.catalog
        value = self._STOCK_VALUE[stock_type]
        keys = sorted(k for k, ts in cat.changes.items() if ts >= since)
        if assortment is not None:
            keys = [k for k in keys if (k[0], k[1]) in assortment]
        if stores is not None:
            keys = [k for k in keys if k[2] in stores]
        out: list[str] = []
        if by_store:
            for kind, idx, store in keys:
                v = 0.0 if self._gone(kind, idx) else value(*cat.cell(kind, idx, store)[:3])
                out.append(_stock_row(cat.id_of(kind, idx), cat.id_of(STORE, store) if store != NULL_STORE else None,
                                      stock_type, v, True))
            return out
        sel = sorted(stores) if stores is not None else list(range(len(cat.stores)))
        seen: set[tuple[int, int]] = set()
        for kind, idx, _store in keys:
            if (kind, idx) in seen:
                continue
            seen.add((kind, idx))
            if self._gone(kind, idx):
                v = 0.0
            else:
                tst = trs = tit = 0.0
                for s in sel + ([NULL_STORE] if stores is None else []):
                    st, rs, it, _moved = cat.cell(kind, idx, s)
                    tst, trs, tit = tst + st, trs + rs, tit + it
                v = value(tst, trs, tit)
            out.append(_stock_row(cat.id_of(kind, idx), None, stock_type, v, False))
        return out

    # Extended (paged, weight 5) reports --------------------------------------------------------
    def _extended_params(self, request: Request) -> tuple[dict[str, list[str]], str]:
        allowed = {"store", "product", "variant", "productFolder", "stockMode", "archived", "search", "moment",
                   "quantityMode", "withSubFolders"}
        params: dict[str, list[str]] = collections.defaultdict(list)
        for cond in parse_filter(request.args("filter")):
            if cond.field not in allowed:
                raise ApiError(400, E_FILTER_VALUE, f"Неизвестное поле фильтрации '{cond.field}'", parameter=cond.field)
            if cond.op != "=":
                raise ApiError(400, E_FILTER, f"Ошибка фильтрации: оператор '{cond.op}' не поддерживается "
                               f"для поля '{cond.field}'", parameter=cond.field)
            params[cond.field].append(cond.value)
        mode = (params.get("stockMode") or [request.arg("stockMode") or ""])[0] or "nonEmpty"
        if mode not in ("all", "positiveOnly", "negativeOnly", "empty", "nonEmpty", "underMinimum"):
            raise ApiError(400, E_FILTER_VALUE, f"Неверное значение '{mode}' параметра фильтрации 'stockMode'",
                           parameter="stockMode")
        return params, mode

    def _href_ids(self, values: list[str], kind: int) -> set[int]:
        out = set()
        for v in values:
            hit = self.catalog.resolve(v.rstrip("/").rsplit("/", 1)[-1].lower(), kind)
            if hit:
                out.add(hit[1])
        return out

    def _extended_stores(self, params: dict[str, list[str]]) -> list[int]:
        if params.get("store"):
            return sorted(self._href_ids(params["store"], STORE))
        return list(range(len(self.catalog.stores)))

    def _extended_cells(self, kind: int, idx: int, sel: list[int], group_by: str) -> list[tuple]:
        """``[(store, stock, reserve, inTransit), ...]``; grouped by product, a product's row
        adds up its variants."""
        cat = self.catalog
        cells = [(s, *cat.cell(kind, idx, s)[:3]) for s in sel]
        if kind == PRODUCT and group_by == "product":
            for j in cat.variants_of(idx):
                if not cat.v_flags[j] & (ARCHIVED | DELETED):
                    cells = [(a[0], a[1] + st, a[2] + rs, a[3] + it)
                             for a, (st, rs, it, _m) in zip(cells, (cat.cell(VARIANT, j, s) for s in sel))]
        return cells

    def _extended_items(self, params: dict[str, list[str]], mode: str, group_by: str) -> list[int]:
        """Matching items in catalog order, each encoded as ``kind << 32 | index``."""
        cat = self.catalog
        sel = self._extended_stores(params)
        only_products = self._href_ids(params["product"], PRODUCT) if params.get("product") else None
        only_variants = self._href_ids(params["variant"], VARIANT) if params.get("variant") else None
        folders = set()
        for v in params.get("productFolder", []):
            hit = cat.resolve(v.rstrip("/").rsplit("/", 1)[-1].lower(), FOLDER)
            if hit:
                folders.add(cat.folders[hit[1]].full_path)

        def in_folder(p: int) -> bool:
            path = cat.p_path_name(p)
            return any(path == f or path.startswith(f + "/") for f in folders)

        def cells(kind: int, idx: int) -> list[tuple[int, float, float, float]]:
            return [(s, *cat.cell(kind, idx, s)[:3]) for s in sel]

        def keep(cs: list) -> bool:
            total = sum(c[1] for c in cs)
            return {"all": True, "positiveOnly": total > 0, "negativeOnly": total < 0, "empty": total == 0,
                    "nonEmpty": total != 0, "underMinimum": total < 0}[mode]

        items = []
        for p in range(cat.n_products):
            if cat.p_flags[p] & (ARCHIVED | DELETED):
                continue
            if folders and not in_folder(p):
                continue
            variants = [j for j in cat.variants_of(p) if not cat.v_flags[j] & (ARCHIVED | DELETED)]
            if group_by == "product":
                if only_products is not None and p not in only_products:
                    continue
                if keep(self._extended_cells(PRODUCT, p, sel, "product")):
                    items.append(PRODUCT << 32 | p)
                continue
            own = cells(PRODUCT, p)
            has_own = any(cat.cell(PRODUCT, p, s)[3] for s in sel)
            if (not variants or has_own) and (only_products is None or p in only_products) and only_variants is None:
                if keep(own):
                    items.append(PRODUCT << 32 | p)
            for j in variants:
                if only_variants is not None and j not in only_variants:
                    continue
                if only_products is not None and p not in only_products:
                    continue
                cs = cells(VARIANT, j)
                if keep(cs):
                    items.append(VARIANT << 32 | j)
        return items

    def _extended_page(self, request: Request, report: str) -> tuple[Renderer, list[tuple], Page]:
        """One page of an extended report: ``(renderer, [(kind, idx, cells)], page)``."""
        limit, offset = self._paging(request)
        params, mode = self._extended_params(request)
        group_by = request.arg("groupBy") or "variant"
        if group_by not in ("product", "variant", "consignment"):
            raise ApiError(400, E_PARAMS, f"Неверное значение параметра 'groupBy': '{group_by}'", parameter="groupBy")
        cat = self.catalog
        key = (report, tuple(sorted((k, tuple(v)) for k, v in params.items())), mode,
               group_by if report == "all" else "variant", cat.version, cat.stock_version)
        items = self._cached(key, lambda: self._extended_items(params, mode, key[3]))
        page = Page(limit, offset, len(items))
        sel = self._extended_stores(params)
        chosen = [(code >> 32, code & 0xFFFFFFFF) for code in items[page.start:page.stop]]
        rows = [(kind, idx, self._extended_cells(kind, idx, sel, key[3])) for kind, idx in chosen]
        return Renderer(cat, self.api_base(request)), rows, page

    def _stock_bystore(self, request: Request) -> Response:
        cat = self.catalog
        with cat.lock:
            r, items, page = self._extended_page(request, "bystore")
            rows = []
            for kind, idx, cells in items:
                meta = r.product_meta(idx) if kind == PRODUCT else r.variant_meta(idx)
                rows.append({"meta": meta, "stockByStore": [
                    {"meta": r.store_ref(s)["meta"], "name": cat.stores[s].name, "stock": _num(st),
                     "reserve": _num(rs), "inTransit": _num(it)} for s, st, rs, it in cells]})
        return self._json(request, self._collection_envelope(
            request, r, "stockbystore", f"{r.api}/report/stock/bystore", rows, page))

    def _stock_all(self, request: Request) -> Response:
        cat = self.catalog
        with cat.lock:
            r, items, page = self._extended_page(request, "all")
            rows = []
            for kind, idx, cells in items:
                p = idx if kind == PRODUCT else cat.v_product[idx]
                st = sum(c[1] for c in cells)
                rs = sum(c[2] for c in cells)
                it = sum(c[3] for c in cells)
                meta = r.product_meta(idx) if kind == PRODUCT else r.variant_meta(idx)
                row: dict[str, Any] = {
                    "meta": meta, "stock": _num(st), "inTransit": _num(it), "reserve": _num(rs),
                    "quantity": _num(st - rs + it),
                    "name": cat.p_name(idx) if kind == PRODUCT else cat.v_name(idx),
                    "code": cat.p_code(idx) if kind == PRODUCT else cat.v_code(idx),
                    "price": float(cat.p_buy_price(p)),
                    "salePrice": float(cat.p_price[p] if kind == PRODUCT else cat.v_effective_price(idx)),
                    "uom": {"meta": r.uom["meta"], "name": "шт"},
                    "externalCode": cat.p_external_code(idx) if kind == PRODUCT else cat.v_external_code(idx),
                    "stockDays": 0.0,
                }
                article = cat.p_article(p)
                if article:
                    row["article"] = article
                folder = cat.p_folder[p]
                if folder >= 0:
                    f = cat.folders[folder]
                    row["folder"] = {"meta": r.folder_ref(folder)["meta"], "name": f.name, "pathName": f.path_name}
                rows.append(row)
        return self._json(request, self._collection_envelope(
            request, r, "stock", f"{r.api}/report/stock/all", rows, page))

    # -- python API for tests, benchmarks and the control endpoints ---------------------------
    def _renderer(self) -> Renderer:
        return Renderer(self.catalog, f"{self.default_origin}/{self.name}/{API_ROOT.rstrip('/')}")

    def _resolve(self, ident: str, kind: int) -> int:
        hit = self.catalog.resolve(ident, kind)
        if hit is None:
            raise KeyError(f"no such {'product' if kind == PRODUCT else 'variant' if kind == VARIANT else 'object'}: {ident}")
        return hit[1]

    def _ids(self, kind: int, include_archived: bool) -> list[str]:
        cat = self.catalog
        flags = cat.p_flags if kind == PRODUCT else cat.v_flags
        with cat.lock:
            return [cat.id_of(kind, i) for i in _flag_rows(flags, {False, True} if include_archived else {False})]

    def product_ids(self, include_archived: bool = True) -> list[str]:
        return self._ids(PRODUCT, include_archived)

    def variant_ids(self, include_archived: bool = True) -> list[str]:
        return self._ids(VARIANT, include_archived)

    def store_ids(self) -> list[str]:
        return [self.catalog.id_of(STORE, s) for s in range(len(self.catalog.stores))]

    def folder_ids(self) -> list[str]:
        return [self.catalog.id_of(FOLDER, f) for f in range(len(self.catalog.folders))]

    def product(self, product_id: str) -> dict:
        with self.catalog.lock:
            return self._renderer().product(self._resolve(product_id, PRODUCT))

    def variant(self, variant_id: str) -> dict:
        with self.catalog.lock:
            return self._renderer().variant(self._resolve(variant_id, VARIANT))

    def _folder_index(self, fields: dict) -> dict:
        for key in ("productFolder", "folder", "product_folder"):
            if key in fields and fields[key] is not None and not isinstance(fields[key], int):
                fields[key] = self._resolve_folder(str(fields[key]))
        return fields

    def _resolve_folder(self, ident: str) -> int:
        hit = self.catalog.resolve(ident.rstrip("/").rsplit("/", 1)[-1].lower(), FOLDER)
        if hit is None:
            raise KeyError(f"no such folder: {ident}")
        return hit[1]

    def update_product(self, product_id: str, **fields) -> dict:
        """Patch a product as a user would in the UI (bumps ``updated``). Fields: name, article,
        code, externalCode, description, salePrice / buyPrice (kopecks), archived, productFolder
        (folder id). Returns the product as the API now shows it."""
        idx = self._resolve(product_id, PRODUCT)
        self.catalog.update_product(idx, **self._folder_index(dict(fields)))
        return self.product(product_id)

    def update_variant(self, variant_id: str, **fields) -> dict:
        """Fields: name, code, externalCode, salePrice (kopecks; 0 = use the product's), archived."""
        self.catalog.update_variant(self._resolve(variant_id, VARIANT), **fields)
        return self.variant(variant_id)

    def delete_product(self, product_id: str) -> None:
        """Really delete it (and its variants): it vanishes from lists and single GETs give 404."""
        self.catalog.delete_product(self._resolve(product_id, PRODUCT))

    def delete_variant(self, variant_id: str) -> None:
        self.catalog.delete_variant(self._resolve(variant_id, VARIANT))

    def add_product(self, **fields) -> str:
        """Create a product without variants; returns its id."""
        idx = self.catalog.add_product(**self._folder_index(dict(fields)))
        return self.catalog.id_of(PRODUCT, idx)

    def add_variant(self, product_id: str, **fields) -> str:
        """Give a product (one just added, say) one more variant; returns the variant's id.
        Fields: name, code, externalCode, salePrice (kopecks; 0 = the product's)."""
        idx = self.catalog.add_variant(self._resolve(product_id, PRODUCT), **fields)
        return self.catalog.id_of(VARIANT, idx)

    def add_folder(self, name: str, parent: str | None = None) -> str:
        """Create a product folder (under folder id ``parent``); returns its id."""
        idx = self.catalog.add_folder(name, self._resolve_folder(parent) if parent else -1)
        return self.catalog.id_of(FOLDER, idx)

    def archive_folder(self, folder_id: str, archived: bool = True) -> None:
        self.catalog.update_folder(self._resolve_folder(folder_id), archived=archived)

    def delete_folder(self, folder_id: str) -> None:
        """Really delete it: gone from lists, a single GET gives 404 (its products keep their link)."""
        self.catalog.update_folder(self._resolve_folder(folder_id), deleted=True)

    def folder(self, folder_id: str) -> dict:
        with self.catalog.lock:
            return self._renderer().folder(self._resolve_folder(folder_id))

    def update_store(self, store_id: str, **fields) -> dict:
        """Fields: name, code, archived. Returns the store as the API now shows it."""
        s = self._store(store_id)
        self.catalog.update_store(s, **fields)
        with self.catalog.lock:
            return self._renderer().store(s)

    def _assortment(self, assortment_id: str) -> tuple[int, int]:
        hit = self.catalog.resolve(assortment_id)
        if hit is None or hit[0] not in (PRODUCT, VARIANT):
            raise KeyError(f"no such product or variant: {assortment_id}")
        return hit

    def _store(self, store_id: str | None) -> int:
        if store_id is None:
            return NULL_STORE
        hit = self.catalog.resolve(store_id, STORE)
        if hit is None:
            raise KeyError(f"no such store: {store_id}")
        return hit[1]

    def set_stock(self, assortment_id: str, store_id: str | None, *, stock: float | None = None,
                  reserve: float | None = None, in_transit: float | None = None) -> None:
        """Set absolute stock/reserve/inTransit of one item at one store (``store_id=None``: a
        reserve without a store). The change is visible to ``changedSince`` from now on."""
        kind, idx = self._assortment(assortment_id)
        self.catalog.set_stock(kind, idx, self._store(store_id), stock=stock, reserve=reserve, in_transit=in_transit)

    def stock(self, assortment_id: str, store_id: str | None) -> dict:
        kind, idx = self._assortment(assortment_id)
        st, rs, it, moved = self.catalog.cell(kind, idx, self._store(store_id))
        return {"stock": _num(st), "reserve": _num(rs), "inTransit": _num(it), "freeStock": _num(st - rs),
                "quantity": _num(st - rs + it), "moved": moved}

    def touch_products(self, n: int) -> list[str]:
        """Reprice ``n`` random active products (bumps ``updated``); returns their ids."""
        return [self.catalog.id_of(PRODUCT, i) for i in self.catalog.touch_products(int(n))]

    def find_sku(self, sku: str) -> str | None:
        """The product/variant id whose SyncSite SKU (variant code; product article, else code) is ``sku``."""
        hit = self.catalog.find_sku(sku)
        return self.catalog.id_of(*hit) if hit else None

    def sku_of(self, assortment_id: str) -> str:
        kind, idx = self._assortment(assortment_id)
        return self.catalog.p_sku(idx) if kind == PRODUCT else self.catalog.v_code(idx)

    def info(self) -> dict:
        info = super().info()
        info.update({"api_root": f"/{self.name}/{API_ROOT.rstrip('/')}", "catalog": self.catalog.summary(),
                     "auth": {"token": self.credentials.token, "login": self.credentials.login,
                              "password": self.credentials.password}})
        return info

    # -- control endpoints (/_sandbox/moysklad/...) --------------------------------------------
    PRICING_OPTIONS = ("wholesale_first", "variant_price_fallback", "unpriced_share")

    def configure(self, **options) -> dict:
        """Also the account's pricing quirks: `wholesale_first` (rows list the wholesale price
        first), `variant_price_fallback` (off: a variant without an own price lists none) and
        `unpriced_share` (that share of the products loses its sale price)."""
        pricing = {k: options.pop(k) for k in self.PRICING_OPTIONS if k in options}
        cat = self.catalog
        with cat.lock:
            if "wholesale_first" in pricing:
                cat.wholesale_first = bool(pricing["wholesale_first"])
            if "variant_price_fallback" in pricing:
                cat.variant_price_fallback = bool(pricing["variant_price_fallback"])
            if pricing:
                cat.version += 1
        if pricing.get("unpriced_share"):
            cat.unprice(float(pricing["unpriced_share"]))
        return super().configure(**options)

    def config(self) -> dict:
        cat = self.catalog
        return {**super().config(), "wholesale_first": cat.wholesale_first,
                "variant_price_fallback": cat.variant_price_fallback, "unpriced_products": len(cat.p_unpriced)}

    def _install_control(self) -> None:
        add = self.control_router.add
        add("GET", "ids", lambda req: json_response({"products": self.product_ids(), "variants": self.variant_ids(),
                                                     "stores": self.store_ids(), "folders": self.folder_ids()}))
        add("POST", "products", lambda req: json_response(self.product(self.add_product(**(req.json() or {}))), 201))
        add("POST", "products/{id}/delete", self._control_delete_product)
        add("POST", "products/{id}", lambda req: json_response(self.update_product(req.params["id"], **(req.json() or {}))))
        add("GET", "products/{id}", lambda req: json_response(self.product(req.params["id"])))
        add("POST", "variants/{id}/delete", self._control_delete_variant)
        add("POST", "variants/{id}", lambda req: json_response(self.update_variant(req.params["id"], **(req.json() or {}))))
        add("POST", "stock", self._control_stock)
        add("POST", "touch", lambda req: json_response({"ids": self.touch_products(int((req.json() or {}).get("count", 1)))}))

    def _control_delete_product(self, request: Request) -> Response:
        self.delete_product(request.params["id"])
        return json_response({"deleted": request.params["id"]})

    def _control_delete_variant(self, request: Request) -> Response:
        self.delete_variant(request.params["id"])
        return json_response({"deleted": request.params["id"]})

    def _control_stock(self, request: Request) -> Response:
        data = request.json() or {}
        items = data if isinstance(data, list) else [data]
        out = []
        for item in items:
            self.set_stock(item["assortmentId"], item.get("storeId"), stock=item.get("stock"),
                           reserve=item.get("reserve"), in_transit=item.get("inTransit"))
            out.append(self.stock(item["assortmentId"], item.get("storeId")))
        return json_response({"changed": len(items), "cells": out})


__all__ = ["MoySkladEmulator", "Renderer", "Collection", "FieldSpec", "Cond", "parse_filter", "select",
           "split_conditions", "API_ROOT"]
