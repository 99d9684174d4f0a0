"""Catalog builders for the marketplace tests (bulk: hundreds of offers in a few statements)."""
from __future__ import annotations

from decimal import Decimal

from django.utils import timezone

from catalog.models import Barcode, Offer, Product
from integrations import jobs
from integrations.runs import run_job
from stock.models import StockLevel, Warehouse


def barcode(i: int) -> str:
    return f"46{i:011d}"


def catalog(n: int, *, warehouse: Warehouse, stock: int = 5, start: int = 1, market=None) -> list[Offer]:
    """`n` offers SKU-00001… with one barcode each and `stock` units in `warehouse`. With
    `market` (a `SandboxMarket`) the offers are the sandbox catalog's too, so the marketplaces list
    them and the barcodes are the sandbox's."""
    numbers = range(start, start + n)
    codes = ([market.list_offer(f"SKU-{i:05d}", f"P{i}") for i in numbers] if market is not None
             else [barcode(i) for i in numbers])
    products = Product.objects.bulk_create([Product(name=f"P{i}") for i in numbers])
    offers = Offer.objects.bulk_create([Offer(product=p, sku=f"SKU-{i:05d}", name=f"P{i}")
                                        for i, p in zip(numbers, products)])
    Barcode.objects.bulk_create([Barcode(offer=o, value=code) for code, o in zip(codes, offers)])
    StockLevel.objects.bulk_create([StockLevel(offer=o, warehouse=warehouse, stock=Decimal(stock), available=Decimal(stock))
                                    for o in offers])
    return offers


def set_stock(offers: list[Offer], warehouse: Warehouse, qty) -> None:
    """Change stock the way an import does: new figures and a fresh updated_at."""
    now = timezone.now()
    StockLevel.objects.filter(offer__in=offers, warehouse=warehouse).update(
        stock=Decimal(qty), available=Decimal(qty), updated_at=now)


def push(*, full: bool = False, trigger: str = "test", **kwargs):
    return run_job(jobs.get("marketplace-stock"), full=full, trigger=trigger, **kwargs)


def pushed_catalog(market, n: int = 300) -> tuple[Warehouse, list[Offer]]:
    """`n` offers (`catalog`) in a warehouse "main", pushed once to every marketplace; then the
    emulators' call logs emptied, time moved past Ozon's 30 s and no push scheduled: where the
    kick tests start."""
    from integrations.marketplaces import debounce
    from tests.factories import make_warehouse

    warehouse = make_warehouse(code="main")
    offers = catalog(n, warehouse=warehouse, market=market)
    push()
    market.reset_calls()
    market.age()
    debounce.release()
    return warehouse, offers


def age(seconds: int = 31) -> None:
    """Let time pass for Ozon's once-per-30-s rule: every last push moves `seconds` back."""
    from datetime import timedelta

    from integrations.models import ChannelOffer

    ChannelOffer.objects.exclude(pushed_at=None).update(pushed_at=timezone.now() - timedelta(seconds=seconds))


# ---------------------------------------------------------------------------------------------
# The sandbox's marketplaces, read the way the push tests need them
# ---------------------------------------------------------------------------------------------
#: stock-push endpoint of each system, as logged by its emulator (method, path prefix)
_PUSH = {"ozon": ("ozon", "POST", "v2/products/stocks", "stocks"),
         "wildberries": ("wb", "PUT", "api/v3/stocks/", "stocks"),
         "yandex_market": ("ym", "POST", "v3/businesses/", "skuItems"),
         "wildberries-content": ("wb-content", "POST", "content/v2/get/cards/list", None)}


class SandboxMarket:
    """Ozon, WB and YM of the in-process sandbox (`sandbox_respx`): what each was sent (its own
    request log), what each now shows (its stock book), and the offers it lists (the sandbox
    catalog, which `catalog(..., market=...)` fills)."""

    def __init__(self, sandbox) -> None:
        self.sandbox = sandbox
        self.ozon_api = sandbox.emulators["ozon"]
        self.wb_api = sandbox.emulators["wb"]
        self.wb_content_api = sandbox.emulators["wb-content"]
        self.ym_api = sandbox.emulators["ym"]
        for emulator in (self.ozon_api, self.wb_api, self.wb_content_api, self.ym_api):
            emulator.log_requests()

    # -- what was sent -----------------------------------------------------------------------------
    @property
    def calls(self) -> dict[str, list[list]]:
        """system -> the batches sent to its stock endpoint, in order (a card read: [cursor]).
        Only systems that were called appear, so `not market.calls` means no call at all."""
        out: dict[str, list[list]] = {}
        for system, (name, method, prefix, key) in _PUSH.items():
            batches = []
            for r in self.sandbox.emulators[name].request_log or ():
                if r.method == method and r.path.startswith(prefix) and (system != "yandex_market"
                                                                          or r.path.endswith("stocks/update")):
                    body = r.json() or {}
                    batches.append(body[key] if key else [body["settings"]["cursor"]])
            if batches:
                out[system] = batches
        return _Calls(out)

    def reset_calls(self) -> None:
        for name, *_ in _PUSH.values():
            self.sandbox.emulators[name].log_requests()

    # -- what the marketplaces show ----------------------------------------------------------------
    @staticmethod
    def _shown(emulator, int_key: bool = False) -> dict:
        return {(int(k) if int_key else k, int(w)): q for (k, w), q in emulator.book.shown().items()}

    @property
    def ozon(self) -> dict[tuple[str, int], int]:
        return self._shown(self.ozon_api)

    @property
    def wb(self) -> dict[tuple[int, int], int]:
        """{(warehouse, chrtId): amount}."""
        return {(w, k): q for (k, w), q in self._shown(self.wb_api, int_key=True).items()}

    @property
    def ym(self) -> dict[tuple[str, int], int]:
        return self._shown(self.ym_api)

    # -- the offers they list ----------------------------------------------------------------------
    def list_offer(self, sku: str, name: str) -> str:
        """Create the product in the sandbox catalog (so every marketplace lists it and WB has a
        card for it); returns its barcode."""
        cat = self.sandbox.catalog
        return cat.p_barcode(cat.add_product(name=name, article=sku))

    def chrt(self, offer) -> int:
        """WB's size id for an offer listed with `list_offer`."""
        from integrations.sandbox.marketplace import item_by_sku

        return item_by_sku(self.sandbox.catalog, offer.sku).chrt

    def age(self, seconds: int = 31) -> None:
        """`age` on both sides: our last pushes and Ozon's once-per-30-s memory of each pair."""
        age(seconds)
        self.ozon_api.forget_pairs()


class _Calls(dict):
    def __missing__(self, key):
        return []
