"""Marketplace stock: Ozon, Wildberries and Yandex Market always show what we can sell.

Anything that changes what we can sell calls `kick(offer_ids)` — one greppable entry point — and
the debounced `marketplace-stock` push does the rest (services.py)."""


def kick(offer_ids, *, countdown=None) -> int:
    """Stock of these offers changed: mark them and schedule a debounced push (see debounce.py)."""
    from .debounce import kick as _kick

    return _kick(offer_ids, countdown=countdown)
