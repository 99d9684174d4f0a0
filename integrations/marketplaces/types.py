"""The vocabulary the stock push and the per-marketplace adapters share."""
from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class StockLine:
    """One figure to send: an offer (its ChannelOffer id, `ref`) under its marketplace key, in one
    marketplace warehouse."""

    ref: int
    key: str
    warehouse: str
    quantity: int


@dataclass(frozen=True)
class LineResult:
    """What the marketplace said about one line. `retry_later`: not applied, but not our data's
    fault either (a per-item rate limit, a batch that never went out) — pending, sent again."""

    ref: int
    warehouse: str
    ok: bool
    error: str = ""
    retry_later: bool = False

    @classmethod
    def accepted(cls, line: StockLine) -> "LineResult":
        return cls(line.ref, line.warehouse, True)

    @classmethod
    def failed(cls, line: StockLine, error: str, *, retry_later: bool = False) -> "LineResult":
        return cls(line.ref, line.warehouse, False, error[:1000], retry_later)
