"""Pure translation for Wildberries: our stock lines <-> stock updates, and content cards ->
which of our offers each size (chrtID) is (no I/O)."""
from __future__ import annotations

from dataclasses import dataclass

from integrations.marketplaces.types import LineResult, StockLine

from .constants import RETRY_LATER_CODES


def stock_items(lines: list[StockLine]) -> list[dict]:
    """`stocks[]` for PUT /api/v3/stocks/{warehouseId}: keyed by `chrtId` (since 2026; a `sku`
    field would be silently ignored — WB does not validate names)."""
    return [{"chrtId": int(line.key), "amount": line.quantity} for line in lines]


def stock_results(lines: list[StockLine], conflicts: list[dict]) -> tuple[list[LineResult], list[StockLine]]:
    """Read a 409's error array: the sizes it names failed with its code. Returns (results for the
    named lines, the other lines). Whether WB applied the others is not documented, so the caller
    sends them again (absolute values: harmless). A conflict that names no size fails every line."""
    if not conflicts:
        return [LineResult.accepted(line) for line in lines], []
    by_chrt = {int(line.key): line for line in lines}
    failed: dict[int, LineResult] = {}
    blanket: list[tuple[str, bool]] = []
    for conflict in conflicts:
        code = str(conflict.get("code") or "Conflict")
        text = f"Wildberries: {code}: {conflict.get('message') or ''}".rstrip(": ")
        later = code in RETRY_LATER_CODES
        data = conflict.get("data")
        named = [d.get("chrtId") for d in data if isinstance(d, dict)] if isinstance(data, list) else []
        named = [c for c in named if isinstance(c, int) and c in by_chrt]
        if not named:
            blanket.append((text, later))
        for chrt in named:
            failed[chrt] = LineResult.failed(by_chrt[chrt], text, retry_later=later)
    if blanket:
        text = "; ".join(t for t, _ in blanket)
        later = all(later for _, later in blanket)
        return [failed.get(int(line.key)) or LineResult.failed(line, text, retry_later=later) for line in lines], []
    return list(failed.values()), [line for line in lines if int(line.key) not in failed]


@dataclass(frozen=True)
class CardSize:
    chrt_id: int
    nm_id: int
    vendor_code: str
    barcodes: tuple[str, ...]
    sizes_on_card: int


def card_sizes(cards: list[dict]) -> list[CardSize]:
    """Every size of the cards (`cards[].sizes[]{chrtID, skus[]}`), skipping malformed ones."""
    out = []
    for card in cards:
        if not isinstance(card, dict):
            continue
        sizes = [s for s in card.get("sizes") or [] if isinstance(s, dict) and isinstance(s.get("chrtID"), int)]
        for size in sizes:
            barcodes = tuple(str(b).strip() for b in size.get("skus") or [] if str(b).strip())
            out.append(CardSize(size["chrtID"], int(card.get("nmID") or 0), str(card.get("vendorCode") or "").strip(),
                                barcodes, len(sizes)))
    return out


def match_sizes(sizes: list[CardSize], *, offer_by_barcode: dict[str, int],
                offer_by_sku: dict[str, int]) -> tuple[dict[int, int], list[str]]:
    """{offer id: chrtID} by the public rule: a size whose barcode is one of our offer's barcodes;
    failing that, a single-size card whose vendorCode is our SKU; failing that, a size barcode
    that is our SKU. Ambiguous matches (one size -> two offers, or one offer -> two sizes) are
    left out and reported for a manager to settle in the admin."""
    problems: list[str] = []
    chosen: dict[int, set[int]] = {}
    for size in sizes:
        offers = {offer_by_barcode[b] for b in size.barcodes if b in offer_by_barcode}
        if not offers and size.sizes_on_card == 1 and size.vendor_code in offer_by_sku:
            offers = {offer_by_sku[size.vendor_code]}
        if not offers:
            offers = {offer_by_sku[b] for b in size.barcodes if b in offer_by_sku}
        if len(offers) > 1:
            problems.append(f"chrtID {size.chrt_id}: barcodes match several offers ({sorted(offers)})")
            continue
        for offer_id in offers:
            chosen.setdefault(offer_id, set()).add(size.chrt_id)
    result = {}
    for offer_id, chrts in chosen.items():
        if len(chrts) > 1:
            problems.append(f"offer {offer_id}: matches several chrtIDs ({sorted(chrts)})")
        else:
            result[offer_id] = next(iter(chrts))
    return result, problems
