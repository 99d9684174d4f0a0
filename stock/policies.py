"""How much of what we hold a sales channel may show. Small, pure value objects — no database, no
settings — so each rule reads, and is tested, on its own.

    policy = PublishPolicy(buffer=BufferPolicy(absolute=2, percent=Decimal(10)), cap=50, ceiling=100_000)
    policy.quantity(Decimal("17.5"))  # floor(17.5 - 2 - 1.75) = 13

Order of the rules: refuse an absurd figure (a data error must never leave the system), then
hold back the buffer, round down (never promise a fraction), floor at 0, then the manager's cap
and the marketplace API's own maximum."""
from __future__ import annotations

import math
from dataclasses import dataclass, replace
from decimal import Decimal


class AbsurdQuantityError(ValueError):
    """The computed figure is above the sanity maximum: a data error upstream, not stock."""


@dataclass(frozen=True)
class BufferPolicy:
    """Safety stock held back from a channel: a fixed number of units plus a percentage of what
    is available (both at once if both are set)."""

    absolute: int = 0
    percent: Decimal = Decimal(0)

    def __post_init__(self):
        if self.absolute < 0:
            raise ValueError("a buffer cannot be negative")
        if not Decimal(0) <= Decimal(self.percent) <= Decimal(100):
            raise ValueError("a buffer percentage is between 0 and 100")

    def overridden(self, *, absolute: int | None = None, percent: Decimal | None = None) -> "BufferPolicy":
        """This buffer with the per-offer overrides that are set (None keeps the channel's)."""
        changes = {}
        if absolute is not None:
            changes["absolute"] = absolute
        if percent is not None:
            changes["percent"] = Decimal(percent)
        return replace(self, **changes) if changes else self

    def apply(self, available: Decimal) -> Decimal:
        """What is left after holding the buffer back (may be negative or fractional)."""
        return available - self.absolute - available * Decimal(self.percent) / 100


@dataclass(frozen=True)
class PublishPolicy:
    """The whole rule for one channel (and, with overrides, one offer on it)."""

    buffer: BufferPolicy = BufferPolicy()
    cap: int | None = None          # the manager's maximum per offer
    ceiling: int | None = None      # the marketplace API's maximum (WB 100,000; Ozon < 1,000,000)
    sanity_max: int | None = None   # above this the figure is a data error, not stock

    def check(self, available: Decimal) -> None:
        """Raise AbsurdQuantityError if `available` cannot be real stock."""
        if self.sanity_max is not None and available > self.sanity_max:
            raise AbsurdQuantityError(f"available {available} is above the sanity maximum {self.sanity_max}")

    def quantity(self, available: Decimal | int, *, enabled: bool = True) -> int:
        """The whole number of units to publish: 0 when switched off; otherwise the available
        figure less the buffer, rounded down, at least 0, at most the cap and the API maximum."""
        if not enabled:
            return 0
        available = Decimal(available)
        self.check(available)
        if available <= 0:
            return 0
        qty = max(0, math.floor(self.buffer.apply(available)))
        for limit in (self.cap, self.ceiling):
            if limit is not None:
                qty = min(qty, limit)
        return qty
