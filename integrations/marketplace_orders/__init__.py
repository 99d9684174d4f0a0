"""Marketplace orders: every channel's orders in one table, one status machine, returns back on
the shelf.

The wing's parts:

* `pull.py` — the `marketplace-orders` job: each configured marketplace's new and changed FBS
  orders (calls in integrations/<marketplace>/orders.py) normalised into `orders.Order` through
  `orders.services.order_create` (the one path that holds stock), changes applied by
  `orders.services.order_status_set`.
* `machine.py` — the unified statuses' allowed transitions and the editable mapping tables
  (`StatusMapping`: a marketplace status → ours; `ActionMapping`: ours → the marketplace action).
* `outbox.py` — `MarketplaceAction` rows, one per status change that needs telling someone (the
  marketplace, or MoySklad after a marketplace-side cancellation), each run exactly once under
  a lease (syncsite.leases).
* `returns.py` — the `marketplace-returns` job.
"""
