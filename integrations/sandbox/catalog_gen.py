"""A deterministic, compact MoySklad-like catalog: folders, products, variants, stores, stock.

Why this shape: benchmarks need 100,000 products + 60,000 variants in a few seconds and a few
hundred MB at most. So per row we keep only what can change (price, ``updated``, flags, folder)
in ``array``/``bytearray`` columns, and derive everything else (name, codes, barcodes, VAT,
weight, external code, ids) from ``(seed, index)`` with a cheap integer hash whenever a row is
rendered. Edits made through the sandbox (rename, new article, ...) go to a small per-row
override dict. Same seed -> same catalog, byte for byte, on every machine.

Times are MoySklad's: naive Moscow time. Internally they are integers, "MSK milliseconds since
1970-01-01 00:00 MSK", which sort and compare cheaply and format straight to
``YYYY-MM-DD HH:MM:SS.mmm``.

This module knows nothing about HTTP or hrefs; moysklad.py renders the JSON.
"""
from __future__ import annotations

import random
import re
import threading
import time
from array import array
from dataclasses import dataclass
from datetime import datetime, timedelta

# ---------------------------------------------------------------------------------------------
# Time
# ---------------------------------------------------------------------------------------------
MSK_OFFSET_MS = 3 * 3600 * 1000          # MSK = UTC+3, no DST
_EPOCH = datetime(1970, 1, 1)
DAY_MS = 86_400_000
DEFAULT_EPOCH = "2026-01-01 00:00:00"    # generated `updated` values lie before this moment
HISTORY_DAYS = 180                       # ... spread over this many days

_DATE_RE = re.compile(r"^(\d{4})-(\d{2})-(\d{2}) (\d{2}):(\d{2})(?::(\d{2})(?:\.(\d{1,3}))?)?$")


def now_msk_ms() -> int:
    return int(time.time() * 1000) + MSK_OFFSET_MS


def format_msk(ms: int, *, millis: bool = True) -> str:
    dt = _EPOCH + timedelta(milliseconds=ms)
    if millis:
        return f"{dt:%Y-%m-%d %H:%M:%S}.{ms % 1000:03d}"
    return f"{dt:%Y-%m-%d %H:%M:%S}"


def parse_msk(text: str) -> int:
    """``YYYY-MM-DD HH:MM[:SS[.mmm]]`` -> MSK ms. Raises ``ValueError`` on anything else."""
    m = _DATE_RE.match(text.strip())
    if not m:
        raise ValueError(f"bad date {text!r}")
    year, month, day, hour, minute = (int(m.group(i)) for i in range(1, 6))
    second = int(m.group(6) or 0)
    frac = m.group(7) or "0"
    millis = int(frac.ljust(3, "0"))
    dt = datetime(year, month, day, hour, minute, second)  # validates ranges
    return (dt - _EPOCH) // timedelta(milliseconds=1) + millis


# ---------------------------------------------------------------------------------------------
# Deterministic hashing and ids
# ---------------------------------------------------------------------------------------------
M64 = (1 << 64) - 1
M48 = (1 << 48) - 1


def mix64(x: int) -> int:
    """splitmix64 finaliser: a bijective, well-spread 64-bit hash."""
    x = (x + 0x9E3779B97F4A7C15) & M64
    x = ((x ^ (x >> 30)) * 0xBF58476D1CE4E5B9) & M64
    x = ((x ^ (x >> 27)) * 0x94D049BB133111EB) & M64
    return x ^ (x >> 31)


_B62 = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"


def base62(n: int, width: int = 22) -> str:
    out = []
    for _ in range(width):
        n, r = divmod(n, 62)
        out.append(_B62[r])
    return "".join(out)


def ean13(first12: str) -> str:
    digits = [int(c) for c in first12]
    check = (10 - (sum(digits[0::2]) + 3 * sum(digits[1::2])) % 10) % 10
    return first12 + str(check)


# Entity kinds (for ids). Other emulator modules may take kinds >= 32.
PRODUCT, VARIANT, FOLDER, STORE, ORGANIZATION, CURRENCY, PRICETYPE, EMPLOYEE, UOM, CHARACTERISTIC, ACCOUNT, GROUP = range(1, 13)

_UUID_RE = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$")


def is_uuid(text: str) -> bool:
    return bool(_UUID_RE.match(text))


class IdCodec:
    """Index <-> UUID for one (seed, kind, ui) triple, with no lookup table.

    The first 24 characters are a constant prefix per triple (version-1 looking, like real
    MoySklad ids); the last 12 hex digits are an invertible affine scramble of the index, so
    ``order=id`` differs from creation order (as upstream) yet decoding is arithmetic.
    ``ui=True`` gives the *other* UUID that MoySklad shows in ``meta.uuidHref`` (UI links).
    """

    def __init__(self, seed: int, kind: int, ui: bool = False):
        h = mix64(((seed & 0xFFFFFFFF) << 16) ^ (kind << 1) ^ int(ui) ^ 0x5A17_0000_0000)
        a, b, c = h >> 32, (h >> 16) & 0xFFFF, 0x8000 | (h & 0x3FFF)
        self.prefix = f"{a:08x}-{b:04x}-11ef-{c:04x}-"
        self.mult = (mix64(h ^ 0x1111) | 1) & M48
        self.add = mix64(h ^ 0x2222) & M48
        self.inv = pow(self.mult, -1, 1 << 48)
        self.kind = kind
        self.ui = ui

    def key(self, idx: int) -> int:
        return (idx * self.mult + self.add) & M48

    def encode(self, idx: int) -> str:
        return f"{self.prefix}{(idx * self.mult + self.add) & M48:012x}"

    def decode(self, text: str) -> int | None:
        if len(text) != 36 or not text.startswith(self.prefix):
            return None
        try:
            x = int(text[24:], 16)
        except ValueError:
            return None
        return ((x - self.add) * self.inv) & M48


# ---------------------------------------------------------------------------------------------
# Word lists (the flavour of a Russian clothing/footwear shop)
# ---------------------------------------------------------------------------------------------
TOP_FOLDERS = [
    ("Одежда", ["Мужская", "Женская", "Детская", "Спорт"],
     ["Футболка", "Рубашка", "Куртка", "Брюки", "Свитер", "Худи", "Платье", "Джинсы"]),
    ("Обувь", ["Кроссовки", "Ботинки", "Сандалии", "Туфли"],
     ["Кроссовки", "Ботинки", "Кеды", "Сандалии", "Туфли", "Слипоны"]),
    ("Аксессуары", ["Сумки", "Ремни", "Головные уборы", "Перчатки"],
     ["Сумка", "Ремень", "Кепка", "Перчатки", "Шарф", "Рюкзак", "Шапка"]),
]
LEAF_FOLDERS = ["Базовые", "Премиум"]
GENERIC_NOUNS = ["Товар", "Набор", "Подарочный сертификат"]
BRANDS = ["Nordic", "Alpina", "Uralsk", "Baikal", "Volga", "Sever", "Taiga", "Altai", "Neva", "Kama", "Amur", "Onega"]
MODEL_LETTERS = "ABCDEFGHKLMNPRSTUVXZ"
COLORS = [("красный", "RED"), ("синий", "BLUE"), ("черный", "BLACK"), ("белый", "WHITE"), ("зеленый", "GREEN")]
SIZES = ["S", "M", "L", "XL"]
STORE_NAMES = ["Основной склад", "Склад Москва", "Склад СПб", "Склад Казань", "Склад Екатеринбург",
               "Склад Новосибирск", "Склад Краснодар", "Склад Самара"]
DESCRIPTIONS = ["Хлопок 100%.", "Подходит для повседневной носки.", "Новая коллекция.",
                "Ограниченная серия.", "Уход: деликатная стирка при 30°."]
PRICE_TYPES = [("Цена продажи", 1.0), ("Оптовая цена", 0.85)]

# Product/variant flag bits
ARCHIVED, DELETED, NO_ARTICLE, HAS_DESCRIPTION = 1, 2, 4, 8
NULL_STORE = -1


@dataclass
class Folder:
    idx: int
    name: str
    parent: int            # -1 at top level
    path_name: str         # path of the *parent* folders, "" at top level (MoySklad's meaning)
    top: int               # index into TOP_FOLDERS of the top-level ancestor
    code: str
    external_code: str
    updated: int
    archived: bool = False
    deleted: bool = False

    @property
    def full_path(self) -> str:
        """What a product in this folder gets as its ``pathName``."""
        return f"{self.path_name}/{self.name}" if self.path_name else self.name


@dataclass
class Store:
    idx: int
    name: str
    code: str
    external_code: str
    updated: int
    address: str
    archived: bool = False


class StockTable:
    """Stock of one assortment kind: ``n_items x n_stores`` cells in flat arrays.

    ``moved`` marks cells that ever took part in an operation; the ``/current`` reports never
    list cells that did not (the real report omits items never moved)."""

    def __init__(self, n_items: int, n_stores: int):
        self.n_stores = n_stores
        cells = n_items * n_stores
        self.stock = array("d", bytes(8 * cells))
        self.reserve = array("d", bytes(8 * cells))
        self.moved = bytearray(cells)
        self.in_transit: dict[int, float] = {}   # sparse: cell -> value

    def grow(self, n_items: int) -> None:
        extra = n_items * self.n_stores - len(self.moved)
        if extra > 0:
            self.stock.extend(array("d", bytes(8 * extra)))
            self.reserve.extend(array("d", bytes(8 * extra)))
            self.moved.extend(bytes(extra))


class Catalog:
    """All sandbox catalog state. Mutating methods take ``self.lock`` and bump ``version``
    (entities) or ``stock_version`` (stock) so cached query results are recomputed."""

    def __init__(self, products: int = 2000, variant_share: float = 0.25, variants_per_product: int = 3,
                 stores: int = 3, seed: int = 1, epoch: str = DEFAULT_EPOCH):
        if products < 0 or not 0 <= variant_share <= 1 or variants_per_product < 1 or stores < 1:
            raise ValueError("bad catalog size parameters")
        self.seed = seed
        self.epoch_ms = parse_msk(epoch)
        #: added to the wall clock wherever the catalog stamps a change (``updated``, stock
        #: changes, ``changedSince`` checks): tests move MoySklad's "now" without sleeping
        self.clock_offset_ms = 0
        self.n_stores_requested = stores
        self.variants_per_product = variants_per_product
        self.lock = threading.RLock()
        self.version = 0
        self.stock_version = 0
        self.codecs = {(k, ui): IdCodec(seed, k, ui) for k in range(1, 13) for ui in (False, True)}
        self._by_prefix = {c.prefix: c for c in self.codecs.values()}
        assert len(self._by_prefix) == len(self.codecs), "id prefix collision"
        self.account_id = self.codecs[(ACCOUNT, False)].encode(0)
        self._salt = mix64(seed * 0x9E37 + 17)
        self._indexes: dict[tuple[int, str], dict[str, list[int]]] = {}
        self._touch_rng = random.Random(seed * 7919 + 1)
        self._last_stamp = 0
        self.changes: dict[tuple[int, int, int], int] = {}    # (kind, idx, store) -> MSK ms
        self.null_reserve: dict[tuple[int, int], float] = {}  # reserves without a store
        # Pricing quirks of real accounts (see moysklad.Renderer.sale_prices / variant):
        #: products with no sale price at all (their variants without an own price have none either)
        self.p_unpriced: set[int] = set()
        #: rows list the wholesale price before the retail one (the account's own list does not)
        self.wholesale_first = False
        #: a variant without an own price shows its product's prices (MoySklad's documented
        #: fallback); off: it lists no sale prices, and the importer must fall back itself
        self.variant_price_fallback = True
        started = time.perf_counter()
        self._generate(products, variant_share, variants_per_product, stores)
        self.generation_seconds = time.perf_counter() - started

    # -- generation ----------------------------------------------------------------------------
    def _generate(self, n_products: int, share: float, vpp: int, n_stores: int) -> None:
        rng = random.Random(self.seed)
        rnd = rng.random
        epoch, history = self.epoch_ms, HISTORY_DAYS * DAY_MS

        # Folders: 3 top-level, 4 children each, 2 grandchildren each (39 in all; none for 0 products).
        self.folders: list[Folder] = []

        def add_folder(name: str, parent: int, top: int) -> int:
            idx = len(self.folders)
            path = self.folders[parent].full_path if parent >= 0 else ""
            self.folders.append(Folder(idx, name, parent, path, top, f"F{idx + 1:03d}",
                                       base62(mix64(self._salt ^ (FOLDER << 40) ^ idx)),
                                       epoch - history - int(rnd() * DAY_MS * 30)))
            return idx

        leaves: list[int] = []
        inner: list[int] = []
        # An empty account (products=0, what tests seed by hand) has no folders either.
        for top, (top_name, children, _nouns) in enumerate(TOP_FOLDERS if n_products else ()):
            t = add_folder(top_name, -1, top)
            inner.append(t)
            for child in children:
                c = add_folder(child, t, top)
                inner.append(c)
                for leaf in LEAF_FOLDERS:
                    leaves.append(add_folder(leaf, c, top))

        self.stores: list[Store] = []
        for s in range(n_stores):
            name = STORE_NAMES[s] if s < len(STORE_NAMES) else f"Склад {s + 1}"
            self.stores.append(Store(s, name, f"S{s + 1:02d}", base62(mix64(self._salt ^ (STORE << 40) ^ s)),
                                     epoch - history - int(rnd() * DAY_MS), f"г. Москва, ул. Складская, {s + 1}"))

        # Products.
        self.p_folder = array("h")
        self.p_price = array("q")
        self.p_updated = array("q")
        self.p_flags = bytearray()
        self.p_vstart = array("i")
        self.p_vcount = array("H")
        self.p_over: dict[int, dict] = {}
        self.v_product = array("i")
        self.v_slot = array("B")
        self.v_price = array("q")       # 0 = no own price: the product's prices show through
        self.v_updated = array("q")
        self.v_flags = bytearray()
        self.v_over: dict[int, dict] = {}

        with_variants = set(rng.sample(range(n_products), round(n_products * share))) if n_products else set()
        lo, hi = max(1, vpp - 1), vpp + 1
        n_leaves, n_inner = len(leaves), len(inner)
        pf, pp, pu, pfl = self.p_folder.append, self.p_price.append, self.p_updated.append, self.p_flags.append
        pvs, pvc = self.p_vstart.append, self.p_vcount.append
        vp, vs, vpr, vu, vfl = (self.v_product.append, self.v_slot.append, self.v_price.append,
                                self.v_updated.append, self.v_flags.append)
        n_var = 0
        for i in range(n_products):
            r = rnd()
            folder = -1 if r < 0.03 else (inner[int(rnd() * n_inner)] if r < 0.15 else leaves[int(rnd() * n_leaves)])
            rub = 100 + int(rnd() ** 2 * 20000)
            price = (rub // 10 * 10 + 9) * 100
            updated = epoch - int(rnd() * history)
            flags = 0
            if rnd() < 0.02:
                flags |= ARCHIVED
            r = rnd()
            if r < 0.10:
                flags |= NO_ARTICLE
            if rnd() < 0.30:
                flags |= HAS_DESCRIPTION
            pf(folder)
            pp(price)
            pu(updated)
            pfl(flags)
            if i in with_variants:
                count = lo + int(rnd() * (hi - lo + 1))
                pvs(n_var)
                pvc(count)
                h = mix64(self._salt ^ (PRODUCT << 40) ^ i)
                for k in range(count):
                    vp(i)
                    vs((h + k) % 20)
                    own = rnd() < 0.5
                    vpr(price + int(rnd() * 5) * 1000 if own else 0)
                    vu(min(epoch - 1, updated + int(rnd() * DAY_MS)))
                    vfl(flags & ARCHIVED)
                n_var += count
            else:
                pvs(-1)
                pvc(0)

        # Stock: sellable items are products without variants and every variant; a few
        # products with variants also hold stock themselves (goods received "without variant").
        self.stock_tables = {PRODUCT: StockTable(n_products, n_stores), VARIANT: StockTable(n_var, n_stores)}
        move_p = [0.9 / (1 + 0.5 * s) for s in range(n_stores)]
        sellable: list[tuple[int, int]] = []
        for kind, count in ((PRODUCT, n_products), (VARIANT, n_var)):
            table = self.stock_tables[kind]
            st, rs, mv, transit = table.stock, table.reserve, table.moved, table.in_transit
            vcount = self.p_vcount
            for i in range(count):
                if kind == PRODUCT and vcount[i]:
                    if rnd() < 0.03:  # stock on the parent product itself
                        cell = i * n_stores
                        mv[cell] = 1
                        st[cell] = 1 + int(rnd() * 10)
                    continue
                sellable.append((kind, i))
                base = i * n_stores
                for s in range(n_stores):
                    if rnd() >= move_p[s]:
                        continue
                    cell = base + s
                    mv[cell] = 1
                    r = rnd()
                    stock = 0.0 if r < 0.12 else float(int(r * 60))
                    if r > 0.995:
                        stock += 0.5  # weighed goods exist: stock is a float upstream
                    st[cell] = stock
                    r = rnd()
                    if r < 0.12:
                        reserve = float(1 + int(rnd() * 3))
                        if reserve > stock and r > 0.01:
                            reserve = float(int(stock))
                        rs[cell] = reserve
                    elif r > 0.98 and s == 0:
                        transit[cell] = float(5 + int(rnd() * 20))
        k = min(len(sellable), max(2, len(sellable) // 300))
        for key in rng.sample(sellable, k):
            self.null_reserve[key] = float(1 + int(rnd() * 2))

    # -- sizes and ids -------------------------------------------------------------------------
    @property
    def n_products(self) -> int:
        return len(self.p_flags)

    @property
    def n_variants(self) -> int:
        return len(self.v_flags)

    def codec(self, kind: int, ui: bool = False) -> IdCodec:
        key = (kind, ui)
        if key not in self.codecs:
            self.codecs[key] = IdCodec(self.seed, kind, ui)
            self._by_prefix[self.codecs[key].prefix] = self.codecs[key]
        return self.codecs[key]

    def id_of(self, kind: int, idx: int) -> str:
        return self.codecs[(kind, False)].encode(idx)

    def ui_id_of(self, kind: int, idx: int) -> str:
        return self.codecs[(kind, True)].encode(idx)

    def decode(self, text: str) -> tuple[int, int, bool] | None:
        """``(kind, index, is_ui_id)`` for any id this catalog could have issued (existing or
        not: callers check bounds and flags)."""
        codec = self._by_prefix.get(text[:24].lower())
        if codec is None:
            return None
        idx = codec.decode(text.lower())
        if idx is None:
            return None
        return codec.kind, idx, codec.ui

    def count(self, kind: int) -> int:
        return {PRODUCT: self.n_products, VARIANT: self.n_variants, FOLDER: len(self.folders),
                STORE: len(self.stores)}.get(kind, 1)

    def exists(self, kind: int, idx: int) -> bool:
        if kind == PRODUCT:
            return 0 <= idx < self.n_products and not self.p_flags[idx] & DELETED
        if kind == VARIANT:
            return 0 <= idx < self.n_variants and not self.v_flags[idx] & DELETED
        if kind == FOLDER:
            return 0 <= idx < len(self.folders) and not self.folders[idx].deleted
        return 0 <= idx < self.count(kind)

    def resolve(self, text: str, kind: int | None = None) -> tuple[int, int] | None:
        """``(kind, index)`` of an existing object by its API id (optionally of a given kind)."""
        decoded = self.decode(text)
        if decoded is None or decoded[2]:
            return None
        k, idx, _ = decoded
        if kind is not None and k != kind:
            return None
        return (k, idx) if self.exists(k, idx) else None

    # -- derived product fields ----------------------------------------------------------------
    def p_hash(self, i: int) -> int:
        return mix64(self._salt ^ (PRODUCT << 40) ^ i)

    def _brand(self, h: int) -> str:
        return BRANDS[(h >> 8) % len(BRANDS)]

    def p_top(self, i: int) -> int:
        f = self.p_folder[i]
        return self.folders[f].top if f >= 0 else -1

    def p_base_name(self, i: int) -> str:
        h = self.p_hash(i)
        top = self.p_top(i)
        nouns = TOP_FOLDERS[top][2] if top >= 0 else GENERIC_NOUNS
        return f"{nouns[h % len(nouns)]} {self._brand(h)} {MODEL_LETTERS[(h >> 16) % 20]}{i + 1}"

    def p_name(self, i: int) -> str:
        over = self.p_over.get(i)
        if over and "name" in over:
            return over["name"]
        return self.p_base_name(i)

    def p_base_article(self, i: int) -> str:
        if self.p_flags[i] & NO_ARTICLE:
            return ""
        return f"{self._brand(self.p_hash(i))[:3].upper()}-{i + 1:06d}"

    def p_article(self, i: int) -> str:
        over = self.p_over.get(i)
        if over and "article" in over:
            return over["article"]
        return self.p_base_article(i)

    def p_code(self, i: int) -> str:
        over = self.p_over.get(i)
        if over and "code" in over:
            return over["code"]
        return f"{i + 1:05d}"

    def p_sku(self, i: int) -> str:
        """SyncSite's SKU rule: the article, or the code when the article is empty."""
        return self.p_article(i) or self.p_code(i)

    def p_external_code(self, i: int) -> str:
        over = self.p_over.get(i)
        if over and "externalCode" in over:
            return over["externalCode"]
        return base62(mix64(self.p_hash(i) ^ 0xE1) << 64 | mix64(self.p_hash(i) ^ 0xE2))

    def p_description(self, i: int) -> str | None:
        over = self.p_over.get(i)
        if over and "description" in over:
            return over["description"] or None
        if not self.p_flags[i] & HAS_DESCRIPTION:
            return None
        h = self.p_hash(i)
        return f"{self.p_base_name(i)}. {DESCRIPTIONS[(h >> 20) % len(DESCRIPTIONS)]}"

    def p_path_name(self, i: int) -> str:
        f = self.p_folder[i]
        return self.folders[f].full_path if f >= 0 else ""

    def p_barcode(self, i: int) -> str:
        return ean13(f"20{self.seed % 10}{i:09d}")

    def p_vat(self, i: int) -> tuple[int, bool]:
        r = (self.p_hash(i) >> 24) % 20
        return (20, True) if r < 17 else ((10, True) if r < 19 else (0, False))

    def p_weight(self, i: int) -> float:
        return round(0.1 + ((self.p_hash(i) >> 32) % 300) / 100, 2)

    def p_images(self, i: int) -> int:
        return (self.p_hash(i) >> 40) % 4

    def p_buy_price(self, i: int) -> int:
        over = self.p_over.get(i)
        if over and "buyPrice" in over:
            return over["buyPrice"]
        return self.p_price[i] * (50 + (self.p_hash(i) >> 48) % 30) // 100

    def unprice(self, share: float, seed_offset: int = 0) -> list[int]:
        """Take the sale price away from a deterministic `share` of the products; returns them."""
        rng = random.Random(self.seed * 104729 + seed_offset)
        with self.lock:
            chosen = sorted(rng.sample(range(self.n_products), round(self.n_products * share)))
            self.p_unpriced.update(chosen)
            self.version += 1
            return chosen

    def sale_prices(self, price: int) -> list[int]:
        """One value per PRICE_TYPES entry, kopecks."""
        return [price if factor == 1.0 else round(price * factor / 100) * 100 for _name, factor in PRICE_TYPES]

    # -- derived variant fields ----------------------------------------------------------------
    def v_hash(self, j: int) -> int:
        return mix64(self._salt ^ (VARIANT << 40) ^ j)

    def v_characteristics(self, j: int) -> tuple[tuple[str, str], str]:
        slot = self.v_slot[j]
        return COLORS[slot % 5], SIZES[slot // 5]

    def v_name(self, j: int) -> str:
        over = self.v_over.get(j)
        if over and "name" in over:
            return over["name"]
        (color, _), size = self.v_characteristics(j)
        return f"{self.p_name(self.v_product[j])} ({color}, {size})"

    def v_code(self, j: int) -> str:
        over = self.v_over.get(j)
        if over and "code" in over:
            return over["code"]
        p = self.v_product[j]
        (_, color_code), size = self.v_characteristics(j)
        base = self.p_base_article(p) or f"{p + 1:05d}"
        return f"{base}-{color_code}-{size}"

    def v_external_code(self, j: int) -> str:
        over = self.v_over.get(j)
        if over and "externalCode" in over:
            return over["externalCode"]
        return base62(mix64(self.v_hash(j) ^ 0xE1) << 64 | mix64(self.v_hash(j) ^ 0xE2))

    def v_barcode(self, j: int) -> str:
        return ean13(f"21{self.seed % 10}{j:09d}")

    def v_effective_price(self, j: int) -> int:
        own = self.v_price[j]
        return own if own else self.p_price[self.v_product[j]]

    def variants_of(self, i: int) -> range:
        start = self.p_vstart[i]
        return range(start, start + self.p_vcount[i]) if start >= 0 else range(0)

    # -- lookups -------------------------------------------------------------------------------
    def lookup(self, kind: int, field: str, values: list[str]) -> set[int]:
        """Indices whose ``field`` equals one of ``values`` (lazy per-field index, rebuilt only
        when that field is edited, so price/updated churn never invalidates it)."""
        getter = {(PRODUCT, "code"): self.p_code, (PRODUCT, "article"): self.p_article,
                  (PRODUCT, "externalCode"): self.p_external_code,
                  (VARIANT, "code"): self.v_code, (VARIANT, "externalCode"): self.v_external_code}[(kind, field)]
        with self.lock:
            index = self._indexes.get((kind, field))
            if index is None:
                index = {}
                for i in range(self.count(kind)):
                    index.setdefault(getter(i), []).append(i)
                self._indexes[(kind, field)] = index
            out: set[int] = set()
            for v in values:
                out.update(index.get(v, ()))
            return out

    def _drop_index(self, kind: int, fields) -> None:
        for f in fields:
            self._indexes.pop((kind, f), None)

    def find_sku(self, sku: str) -> tuple[int, int] | None:
        """The sellable item whose SKU is ``sku``: a variant by code, or a product by article,
        else by code (SyncSite's SKU rule)."""
        for kind, field in ((VARIANT, "code"), (PRODUCT, "article"), (PRODUCT, "code")):
            for idx in sorted(self.lookup(kind, field, [sku])):
                if self.exists(kind, idx) and (kind != PRODUCT or field == "article" or not self.p_article(idx)):
                    return kind, idx
        return None

    # -- mutations -----------------------------------------------------------------------------
    _FIELD_ALIASES = {"sale_price": "salePrice", "price": "salePrice", "buy_price": "buyPrice",
                      "external_code": "externalCode", "folder": "productFolder", "product_folder": "productFolder"}
    PRODUCT_FIELDS = {"name", "article", "code", "externalCode", "description", "salePrice", "buyPrice",
                      "archived", "productFolder", "barcodes"}
    VARIANT_FIELDS = {"name", "code", "externalCode", "salePrice", "archived", "barcodes"}
    BARCODE_TYPES = ("ean13", "ean8", "code128", "gtin", "upc")

    @classmethod
    def _barcodes(cls, value) -> list[dict]:
        """A ``barcodes`` list as the API has it: ``[{"ean13": "..."}, {"code128": "..."}]``."""
        out = []
        for item in value or ():
            if not (isinstance(item, dict) and len(item) == 1 and next(iter(item)) in cls.BARCODE_TYPES):
                raise ValueError(f"a barcode is one of {cls.BARCODE_TYPES} with its value, not {item!r}")
            out.append({k: str(v) for k, v in item.items()})
        return out

    def p_barcodes(self, i: int) -> list[dict]:
        over = self.p_over.get(i)
        if over and "barcodes" in over:
            return [dict(b) for b in over["barcodes"]]
        return [{"ean13": self.p_barcode(i)}]

    def v_barcodes(self, j: int) -> list[dict]:
        over = self.v_over.get(j)
        if over and "barcodes" in over:
            return [dict(b) for b in over["barcodes"]]
        return [{"ean13": self.v_barcode(j)}]

    def _normalize(self, fields: dict, allowed: set[str]) -> dict:
        out = {self._FIELD_ALIASES.get(k, k): v for k, v in fields.items()}
        unknown = set(out) - allowed
        if unknown:
            raise ValueError(f"cannot set {sorted(unknown)}; allowed: {sorted(allowed)}")
        return out

    def now_ms(self) -> int:
        """MoySklad's "now" (MSK ms): the wall clock plus ``clock_offset_ms``."""
        return now_msk_ms() + self.clock_offset_ms

    def advance(self, seconds: float) -> None:
        """Move this catalog's clock forward (a test's "an hour later in MoySklad")."""
        with self.lock:
            self.clock_offset_ms += int(seconds * 1000)

    def _stamp(self) -> int:
        """A fresh ``updated`` value, strictly increasing so deltas can rely on order."""
        now = self.now_ms()
        self._last_stamp = now if now > self._last_stamp else self._last_stamp + 1
        return self._last_stamp

    def update_product(self, i: int, **fields) -> None:
        """Edit product ``i`` like a user in the MoySklad UI would; ``updated`` moves forward.
        ``salePrice``/``buyPrice`` are kopecks; ``productFolder`` a folder index or None."""
        fields = self._normalize(fields, self.PRODUCT_FIELDS)
        with self.lock:
            if not self.exists(PRODUCT, i):
                raise KeyError(f"no product #{i}")
            over = self.p_over.setdefault(i, {})
            for key, value in fields.items():
                if key == "salePrice" and value is None:
                    self.p_unpriced.add(i)      # no sale price at all (0 is a price)
                elif key == "salePrice":
                    self.p_unpriced.discard(i)
                    self.p_price[i] = int(round(float(value)))
                elif key == "buyPrice":
                    over["buyPrice"] = int(round(float(value)))
                elif key == "archived":
                    self._set_archived(PRODUCT, i, bool(value))
                elif key == "productFolder":
                    self.p_folder[i] = -1 if value is None else int(value)
                elif key == "barcodes":
                    over["barcodes"] = self._barcodes(value)
                else:
                    over[key] = "" if value is None else str(value)
            if not over:
                del self.p_over[i]
            self._drop_index(PRODUCT, fields)
            self.p_updated[i] = self._stamp()
            self.version += 1

    def update_variant(self, j: int, **fields) -> None:
        fields = self._normalize(fields, self.VARIANT_FIELDS)
        with self.lock:
            if not self.exists(VARIANT, j):
                raise KeyError(f"no variant #{j}")
            over = self.v_over.setdefault(j, {})
            for key, value in fields.items():
                if key == "salePrice":
                    self.v_price[j] = int(round(float(value or 0)))
                elif key == "archived":
                    self._set_archived(VARIANT, j, bool(value))
                elif key == "barcodes":
                    over["barcodes"] = self._barcodes(value)
                else:
                    over[key] = str(value)
            if not over:
                del self.v_over[j]
            self._drop_index(VARIANT, fields)
            self.v_updated[j] = self._stamp()
            self.version += 1

    def _set_archived(self, kind: int, idx: int, archived: bool) -> None:
        flags = self.p_flags if kind == PRODUCT else self.v_flags
        if bool(flags[idx] & ARCHIVED) == archived:
            return
        flags[idx] = flags[idx] | ARCHIVED if archived else flags[idx] & ~ARCHIVED
        self._record_item_change(kind, idx)
        if kind == PRODUCT:  # archiving a product archives its variants (they vanish from lists)
            stamp = self._stamp()
            for j in self.variants_of(idx):
                if not self.v_flags[j] & DELETED:
                    self.v_flags[j] = self.v_flags[j] | ARCHIVED if archived else self.v_flags[j] & ~ARCHIVED
                    self.v_updated[j] = stamp
                    self._record_item_change(VARIANT, j)

    def _record_item_change(self, kind: int, idx: int) -> None:
        """An item vanished or came back: its stock cells count as changed (``changedSince``
        then reports them, as 0 while the item is deleted or archived)."""
        table = self.stock_tables[kind]
        now = self.now_ms()
        base = idx * table.n_stores
        for s in range(table.n_stores):
            if table.moved[base + s]:
                self.changes[(kind, idx, s)] = now
        if (kind, idx) in self.null_reserve:
            self.changes[(kind, idx, NULL_STORE)] = now
        self.stock_version += 1

    def delete_product(self, i: int) -> None:
        """Really delete (not archive): the product and its variants vanish from every list."""
        with self.lock:
            if not self.exists(PRODUCT, i):
                raise KeyError(f"no product #{i}")
            self.p_flags[i] |= DELETED
            self._record_item_change(PRODUCT, i)
            for j in self.variants_of(i):
                if not self.v_flags[j] & DELETED:
                    self.v_flags[j] |= DELETED
                    self._record_item_change(VARIANT, j)
            self.version += 1

    def delete_variant(self, j: int) -> None:
        with self.lock:
            if not self.exists(VARIANT, j):
                raise KeyError(f"no variant #{j}")
            self.v_flags[j] |= DELETED  # the parent's variant range stays; deleted ones are skipped
            self._record_item_change(VARIANT, j)
            self.version += 1

    def add_variant(self, i: int, **fields) -> int:
        """Give product ``i`` one more variant (the next colour/size of its grid); its index.
        A product's variants are one run of indices, so this works for a product without
        variants or whose variants are the last ones created (any product the caller just added).
        Fields as ``update_variant``."""
        with self.lock:
            if not self.exists(PRODUCT, i):
                raise KeyError(f"no product #{i}")
            start, count, n = self.p_vstart[i], self.p_vcount[i], self.n_variants
            if count and start + count != n:
                raise ValueError("only the product whose variants were created last can gain one")
            if not count:
                self.p_vstart[i] = n
            self.p_vcount[i] = count + 1
            self.v_product.append(i)
            self.v_slot.append((mix64(self._salt ^ (PRODUCT << 40) ^ i) + count) % 20)
            self.v_price.append(0)
            self.v_updated.append(self._stamp())
            self.v_flags.append(0)
            self.stock_tables[VARIANT].grow(n + 1)
            self.p_updated[i] = self._stamp()   # the product's variantsCount changed
            self._indexes.clear()
            self.version += 1
            if fields:
                self.update_variant(n, **fields)
            return n

    def add_folder(self, name: str, parent: int = -1) -> int:
        """Create a product folder (under folder index ``parent``, -1 at the top); its index."""
        with self.lock:
            if parent != -1 and not 0 <= parent < len(self.folders):
                raise KeyError(f"no folder #{parent}")
            idx = len(self.folders)
            top = self.folders[parent].top if parent >= 0 else 0
            path = self.folders[parent].full_path if parent >= 0 else ""
            self.folders.append(Folder(idx, str(name), parent, path, top, f"F{idx + 1:03d}",
                                       base62(mix64(self._salt ^ (FOLDER << 40) ^ idx)), self._stamp()))
            self.version += 1
            return idx

    def update_folder(self, f: int, *, archived: bool | None = None, deleted: bool | None = None) -> None:
        """Archive or really delete a folder (a deleted one vanishes from lists and lookups)."""
        with self.lock:
            folder = self.folders[f]
            if archived is not None:
                folder.archived = bool(archived)
            if deleted is not None:
                folder.deleted = bool(deleted)
            folder.updated = self._stamp()
            self.version += 1

    def update_store(self, s: int, *, name: str | None = None, code: str | None = None,
                     archived: bool | None = None) -> None:
        """Rename, recode or archive a store as a user would in the UI (bumps ``updated``)."""
        with self.lock:
            store = self.stores[s]
            if name is not None:
                store.name = str(name)
            if code is not None:
                store.code = str(code)
            if archived is not None:
                store.archived = bool(archived)
            store.updated = self._stamp()
            self.version += 1

    def live_variant_count(self, i: int) -> int:
        return sum(1 for j in self.variants_of(i) if not self.v_flags[j] & DELETED)

    def add_product(self, *, name: str | None = None, article: str | None = None, code: str | None = None,
                    salePrice: int | None = None, productFolder: int | None = None, **fields) -> int:
        """Create a product (no variants, no stock yet); returns its index."""
        with self.lock:
            i = self.n_products
            self.p_folder.append(-1 if productFolder is None else int(productFolder))
            self.p_price.append(int(salePrice) if salePrice is not None else 99_900)
            self.p_updated.append(self._stamp())
            self.p_flags.append(0)
            self.p_vstart.append(-1)
            self.p_vcount.append(0)
            self.stock_tables[PRODUCT].grow(self.n_products)
            over = {k: v for k, v in (("name", name), ("article", article), ("code", code)) if v is not None}
            if over:
                self.p_over[i] = over
            self._indexes.clear()
            self.version += 1
            if fields:
                self.update_product(i, **fields)
            return i

    def set_stock(self, kind: int, idx: int, store: int, *, stock: float | None = None,
                  reserve: float | None = None, in_transit: float | None = None) -> None:
        """Set absolute values of one cell (``store`` = NULL_STORE for a reserve without a
        store); the cell counts as moved and as changed now (for ``changedSince``)."""
        with self.lock:
            if not self.exists(kind, idx):
                raise KeyError("no such assortment item")
            if store == NULL_STORE:
                if reserve is not None:
                    self.null_reserve[(kind, idx)] = float(reserve)
            else:
                if not 0 <= store < len(self.stores):
                    raise KeyError("no such store")
                table = self.stock_tables[kind]
                cell = idx * table.n_stores + store
                table.moved[cell] = 1
                if stock is not None:
                    table.stock[cell] = float(stock)
                if reserve is not None:
                    table.reserve[cell] = float(reserve)
                if in_transit is not None:
                    if in_transit:
                        table.in_transit[cell] = float(in_transit)
                    else:
                        table.in_transit.pop(cell, None)
            self.changes[(kind, idx, store)] = self.now_ms()
            self.stock_version += 1

    def cell(self, kind: int, idx: int, store: int) -> tuple[float, float, float, bool]:
        """``(stock, reserve, in_transit, moved)`` of one cell."""
        if store == NULL_STORE:
            r = self.null_reserve.get((kind, idx))
            return 0.0, (r or 0.0), 0.0, r is not None
        table = self.stock_tables[kind]
        c = idx * table.n_stores + store
        return table.stock[c], table.reserve[c], table.in_transit.get(c, 0.0), bool(table.moved[c])

    def touch_products(self, n: int) -> list[int]:
        """Change the sale price of ``n`` random active products (a price-list update in the
        UI); returns their indices. Used by the delta-sync benchmark."""
        with self.lock:
            alive = [i for i, f in enumerate(self.p_flags) if not f & (DELETED | ARCHIVED)]
            chosen = self._touch_rng.sample(alive, min(n, len(alive)))
            stamp = self._stamp()
            for i in chosen:
                old = self.p_price[i]
                pct = self._touch_rng.choice((-10, -5, -3, 3, 5, 10))
                new = max(100, round(old * (100 + pct) / 10000) * 100)
                self.p_price[i] = new if new != old else old + 100
                self.p_updated[i] = stamp
            self.version += 1
            return chosen

    # -- summaries -----------------------------------------------------------------------------
    def summary(self) -> dict:
        return {
            "products": sum(1 for f in self.p_flags if not f & DELETED),
            "products_with_variants": sum(1 for i, c in enumerate(self.p_vcount) if c and not self.p_flags[i] & DELETED),
            "variants": sum(1 for f in self.v_flags if not f & DELETED),
            "archived_products": sum(1 for f in self.p_flags if f & ARCHIVED and not f & DELETED),
            "folders": len(self.folders),
            "stores": len(self.stores),
            "seed": self.seed,
            "generation_seconds": round(self.generation_seconds, 3),
        }


def generate(products: int = 2000, variant_share: float = 0.25, variants_per_product: int = 3,
             stores: int = 3, seed: int = 1, epoch: str = DEFAULT_EPOCH) -> Catalog:
    """Build a catalog. ``variant_share`` of the products (exactly, rounded) get between
    ``variants_per_product - 1`` and ``+ 1`` variants (at least 1), so the mean is
    ``variants_per_product``."""
    return Catalog(products, variant_share, variants_per_product, stores, seed, epoch)
