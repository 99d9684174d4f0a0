"""One order, one MoySklad store, held end to end, against the sandbox over real sockets.

The rule: a site order reserves from the shipping store when it holds the whole order, else from
the store with the most that does; the export names that store, so MoySklad's reserve lands
where our hold is; a stock sync keeps unexported holds subtracted and never counts units MoySklad
already reserves for our orders. Checked after every step of orders, exports, an upstream
restock and stock syncs in many interleavings: nothing is ever sold beyond a store's stock."""
from __future__ import annotations

from decimal import Decimal

import pytest

from integrations import jobs
from integrations.models import JobRun, OfferBinding, OrderBinding, WarehouseBinding
from integrations.moysklad.client import MoySkladClient
from integrations.moysklad.orders import OrderExportSession
from integrations.runs import run_job
from orders import services
from orders.models import ExportState, Order
from stock.models import StockHold, StockLevel, Warehouse
from tests.orders_fixtures import order_body, post_order, sandbox_moysklad

pytestmark = pytest.mark.django_db
#: upstream stock of the item per store (the first store is the shipping store and holds none)
START = (0, 3, 1)


@pytest.fixture
def sandbox(settings):
    with sandbox_moysklad(settings, products=12, variant_share=0.0, stores=3, seed=5) as srv:
        yield srv


class World:
    """The sandbox's MoySklad and our site, with the steps of a scenario and its invariants."""

    def __init__(self, sandbox):
        self.ms = sandbox.moysklad
        assert run_job(jobs.get("moysklad-catalog"), trigger="test").status == JobRun.Status.SUCCESS
        self.stores = self.ms.store_ids()
        binding = OfferBinding.objects.filter(kind="product").select_related("offer").order_by("id").first()
        self.item, self.offer = binding.external_id, binding.offer
        for store, qty in zip(self.stores, START):
            self.ms.set_stock(self.item, store, stock=qty, reserve=0)
        self.sync()
        self.warehouse = {store: WarehouseBinding.objects.get(external_id=store).warehouse_id for store in self.stores}
        self.store_of = {w: s for s, w in self.warehouse.items()}
        assert Warehouse.objects.get(pk=self.warehouse[self.stores[0]]).ships_orders
        self.orders: list[Order] = []
        self.refused = 0

    # -- steps ------------------------------------------------------------------------------------
    def sync(self, full: bool = True) -> None:
        assert run_job(jobs.get("moysklad-stock"), trigger="test", full=full).status == JobRun.Status.SUCCESS

    def place(self) -> None:
        try:
            self.orders.append(services.order_create(
                customer=services.CustomerData(name="Анна", email="anna@example.com"),
                items=[services.LineRequest(sku=self.offer.sku, quantity=1)],
                idempotency_key=f"k{len(self.orders) + self.refused}").order)
        except services.InsufficientStock:
            self.refused += 1

    def export(self, n: int) -> None:
        if n < len(self.orders):
            with MoySkladClient() as client:
                assert OrderExportSession(client).export(self.orders[n].pk) in ("exported", "skipped")

    def restock(self) -> None:
        """A delivery of one unit at the second store."""
        store = self.stores[1]
        cell = self.ms.stock(self.item, store)
        self.ms.set_stock(self.item, store, stock=cell["stock"] + 1)

    # -- what must hold after every step ----------------------------------------------------------
    def held_at(self, store: str, *, exported: bool | None = None) -> Decimal:
        orders = [o for o in self.orders if exported is None
                  or (OrderBinding.objects.get(order_id=o.pk).export_state == ExportState.EXPORTED) == exported]
        refs = [line.hold_ref for o in orders for line in o.lines.all()]
        return sum(StockHold.objects.filter(ref__in=refs, warehouse_id=self.warehouse[store])
                   .values_list("quantity", flat=True), Decimal(0))

    def check(self, *, synced: bool) -> None:
        for order in self.orders:  # one order, one store
            assert StockHold.objects.filter(ref__in=[ln.hold_ref for ln in order.lines.all()]) \
                .values("warehouse_id").distinct().count() == 1
        for store in self.stores:
            cell = self.ms.stock(self.item, store)
            sold_here = self.held_at(store)
            assert sold_here <= Decimal(str(cell["stock"])), f"oversold at {store}"
            # MoySklad's reserve at this store is exactly our exported orders held here.
            assert Decimal(str(cell["reserve"])) == self.held_at(store, exported=True)
            if synced:
                level = StockLevel.objects.filter(offer=self.offer, warehouse_id=self.warehouse[store]).first()
                free = Decimal(str(cell["stock"])) - Decimal(str(cell["reserve"]))
                available = level.available if level else Decimal(0)  # never listed upstream: none
                assert available == max(free - self.held_at(store, exported=False), Decimal(0)), store
        for order in self.orders:
            binding = OrderBinding.objects.filter(order=order).exclude(external_id="").first()
            if binding:  # the customerorder names the store our hold is in
                remote = self.ms.orders.orders[binding.external_id]
                hold = StockHold.objects.filter(ref=order.lines.get().hold_ref).get()
                assert remote["_store"] == self.store_of[hold.warehouse_id]

    def sell_out(self) -> None:
        """Sync, order one unit at a time until refused, export everything, sync: what was sold is
        exactly what there was, never more."""
        self.sync()
        for _ in range(10):
            before = self.refused
            self.place()
            self.check(synced=False)
            if self.refused > before:
                break
        for n in range(len(self.orders)):
            self.export(n)
        self.sync()
        self.check(synced=True)
        total = sum(Decimal(str(self.ms.stock(self.item, s)["stock"])) for s in self.stores)
        assert len(self.orders) <= total
        assert StockLevel.objects.filter(offer=self.offer).exclude(available=0).count() == 0


def steps_with_syncs(steps: list[str], sync_after: set[int] | str) -> list[str]:
    out = []
    for i, step in enumerate(steps):
        out.append(step)
        if sync_after == "all" or i in sync_after:
            out.append("S")
    return out


BATCH = ["P", "P", "P", "E0", "E1", "E2", "R", "P"]              # orders first, then exports
ONE_BY_ONE = ["P", "E0", "R", "P", "E1", "P", "P", "E2", "E3"]   # each exported before the next
SCENARIOS = {f"batch-sync-after-{k}": steps_with_syncs(BATCH, {k}) for k in range(len(BATCH))}
SCENARIOS.update({f"{name}-sync-{mode}": steps_with_syncs(steps, "all" if mode == "always" else set())
                  for name, steps in (("batch", BATCH), ("one-by-one", ONE_BY_ONE)) for mode in ("always", "never")})
SCENARIOS["one-by-one-delta-syncs"] = [s if s != "S" else "s" for s in steps_with_syncs(ONE_BY_ONE, "all")]


@pytest.mark.parametrize("steps", list(SCENARIOS.values()), ids=list(SCENARIOS))
def test_orders_exports_and_syncs_in_any_order_never_oversell(sandbox, published, steps):
    world = World(sandbox)
    synced = True
    for step in steps:
        if step == "P":
            world.place()
        elif step.startswith("E"):
            world.export(int(step[1:]))
        elif step == "R":
            world.restock()
            synced = False
        elif step in ("S", "s"):
            world.sync(full=step == "S")
            synced = True
        world.check(synced=synced)
    world.sell_out()


def test_the_reported_oversell_no_longer_happens(sandbox, published, api):
    """3 units in a store that is not the shipping store, 3 orders exported, stock raised to 4:
    the site offers 1 more, not 4, and refuses the one after."""
    world = World(sandbox)
    world.ms.set_stock(world.item, world.stores[2], stock=0)
    world.sync()
    for n in range(3):
        assert post_order(api, order_body((world.offer.sku, 1)), key=f"o{n}").status_code == 201
        world.orders.append(Order.objects.order_by("-id").first())
        world.export(n)
    assert [r["_store"] for r in world.ms.orders.orders.values()] == [world.stores[1]] * 3
    world.ms.set_stock(world.item, world.stores[1], stock=4)
    world.sync()
    product = api.get(f"/api/v1/products/{world.offer.sku}").json()
    assert product["available"] == 1
    assert post_order(api, order_body((world.offer.sku, 2)), key="o3").status_code == 409
    assert post_order(api, order_body((world.offer.sku, 1)), key="o4").status_code == 201
    refused = post_order(api, order_body((world.offer.sku, 1)), key="o5")
    assert refused.status_code == 409 and refused.json()["available"] == 0
    world.orders.append(Order.objects.order_by("-id").first())
    world.check(synced=False)


def test_an_order_no_single_store_holds_is_refused_saying_so(sandbox, published, api):
    world = World(sandbox)  # 0, 3 and 1: 4 in all, at most 3 in one store
    response = post_order(api, order_body((world.offer.sku, 4)), key="big")
    assert response.status_code == 409
    body = response.json()
    assert (body["available"], body["requested"]) == (3, 4)
    assert "no single warehouse holds the whole order" in body["detail"]
    assert not Order.objects.exists()
