"""Wildberries' part of the marketplace stock push (integrations/marketplaces/): stock by size
(chrtID) per seller warehouse, and the keys themselves, read from the content API's cards: the
size whose barcode (or card vendorCode) is our offer's barcode (or SKU)."""
from __future__ import annotations

from datetime import datetime, timedelta

from django.conf import settings
from django.utils import timezone
from django.utils.dateparse import parse_datetime

from catalog.models import Barcode, Offer
from integrations.marketplaces.base import StockChannel
from integrations.marketplaces.types import LineResult, StockLine
from integrations.models import Channel, ChannelOffer, System
from integrations.runs import JobContext
from syncsite.bulk import in_chunks, insert_ignore, save_all

from . import client as wb_client
from .constants import STOCK_BATCH_MAX, STOCK_MAX
from .mapping import card_sizes, match_sizes, stock_items, stock_results


class WildberriesStockChannel(StockChannel):
    system = System.WILDBERRIES
    settings_name = "WILDBERRIES"
    batch_max = STOCK_BATCH_MAX
    ceiling = STOCK_MAX

    def configured(self) -> bool:
        return wb_client.is_configured(self.conf)

    def open(self) -> wb_client.WildberriesClient:
        return wb_client.WildberriesClient(self.conf)

    def key_error(self, key: str) -> str | None:
        if not key.strip():
            return "no chrtID: no card size matches this offer's barcode or SKU; set it in the admin"
        return None if key.isdigit() else f"chrtID {key!r} is not a number"

    def batch_group(self, line: StockLine) -> str:
        return line.warehouse  # one PUT per seller warehouse

    def push(self, client: wb_client.WildberriesClient, lines: list[StockLine], *, at: datetime) -> list[LineResult]:
        """One PUT. A 409 names the sizes it refused; whether WB applied the rest is not
        documented, so they are sent once more on their own (absolute values: harmless)."""
        warehouse = int(lines[0].warehouse)
        results, others = stock_results(lines, client.stocks_update(warehouse, stock_items(lines)))
        if others:
            again, rest = stock_results(others, client.stocks_update(warehouse, stock_items(others)))
            results += again + [LineResult.failed(line, "not confirmed: Wildberries refused the batch twice",
                                                  retry_later=True) for line in rest]
        return results

    # -- keys from the content API ------------------------------------------------------------------
    def offers_sync(self, channel: Channel, ctx: JobContext, *, full: bool) -> None:
        """Read the cards changed since the last read (by WB's `updatedAt` cursor; every card the
        first time) and bind their sizes to our offers. A delta run does this at most every
        WB_CARDS_REFRESH_SECONDS, a full run always. Never a full re-read when a cursor exists:
        100,000 cards are 1,000 calls of a 100-a-minute budget, ten minutes for nothing new."""
        now = timezone.now()
        every = timedelta(seconds=settings.MARKETPLACES["WB_CARDS_REFRESH_SECONDS"])
        if not full and channel.catalog_synced_at and now - channel.catalog_synced_at < every:
            return
        since = channel.catalog_cursor
        newest = since
        with wb_client.WildberriesContentClient(self.conf) as content:
            for cards in content.iter_cards(updated_since=since):
                self._bind_cards(channel, cards, ctx)
                for card in cards:
                    stamp = parse_datetime(str(card.get("updatedAt") or "")) if isinstance(card, dict) else None
                    if stamp and (newest is None or stamp > newest):
                        newest = stamp
                ctx.count("wildberries_cards", len(cards))
            ctx.count("wildberries_content_calls", content.stats.requests)
        Channel.objects.filter(pk=channel.pk).update(catalog_cursor=newest, catalog_synced_at=now)
        channel.catalog_cursor, channel.catalog_synced_at = newest, now

    def _bind_cards(self, channel: Channel, cards: list[dict], ctx: JobContext) -> None:
        sizes = card_sizes(cards)
        if not sizes:
            return
        barcodes = {b for s in sizes for b in s.barcodes}
        owners: dict[str, set[int]] = {}
        for value, offer_id in in_chunks(lambda c: Barcode.objects.filter(value__in=c).values_list("value", "offer_id"),
                                         list(barcodes)):
            owners.setdefault(value, set()).add(offer_id)
        offer_by_barcode = {v: next(iter(o)) for v, o in owners.items() if len(o) == 1}
        for value in (v for v, o in owners.items() if len(o) > 1):
            ctx.error(f"wildberries:barcode:{value}", f"barcode {value} belongs to several of our offers")
        skus = {s.vendor_code for s in sizes if s.vendor_code} | barcodes
        offer_by_sku = dict(in_chunks(lambda c: Offer.objects.filter(sku__in=c).values_list("sku", "pk"), list(skus)))
        matches, problems = match_sizes(sizes, offer_by_barcode=offer_by_barcode, offer_by_sku=offer_by_sku)
        for problem in problems:
            ctx.error("wildberries:match", problem)
        ctx.count("wildberries_sizes_unmatched", len(sizes) - len(matches) - len(problems))
        self._save_keys(channel, matches, ctx)

    def _save_keys(self, channel: Channel, matches: dict[int, int], ctx: JobContext) -> None:
        if not matches:
            return
        rows = {co.offer_id: co for co in in_chunks(
            lambda c: ChannelOffer.objects.filter(channel=channel, offer_id__in=c), list(matches))}
        keys = [str(chrt) for chrt in matches.values()]
        owner = dict(in_chunks(lambda c: ChannelOffer.objects.filter(channel=channel, external_key__in=c)
                               .values_list("external_key", "offer_id"), keys))
        new, changed = [], []
        for offer_id, chrt in matches.items():
            key = str(chrt)
            if owner.get(key, offer_id) != offer_id:
                ctx.error(f"wildberries:chrt:{key}", f"chrtID {key} already belongs to offer {owner[key]}; "
                                                     f"not bound to offer {offer_id}")
                continue
            co = rows.get(offer_id)
            if co is None:
                new.append(ChannelOffer(channel=channel, offer_id=offer_id, external_key=key))
            elif co.key_source == ChannelOffer.KeySource.AUTO and co.external_key != key:
                co.external_key, co.status = key, ChannelOffer.Status.PENDING
                changed.append(co)
            owner[key] = offer_id
        insert_ignore(ChannelOffer, new)
        save_all(ChannelOffer, changed, fields=["external_key", "status"])
        ctx.count("wildberries_offers_added", len(new))
        ctx.count("wildberries_keys_changed", len(changed))
