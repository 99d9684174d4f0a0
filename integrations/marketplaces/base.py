"""What one marketplace must tell the shared stock push: its limits, how to open a client, how to
send one batch and read the answer item by item, and how its keys are found. Each marketplace
folder (ozon/, wildberries/, yandex_market/) has one `StockChannel` in its jobs.py; everything
else — what to send, when, and what to record — is shared (services.py)."""
from __future__ import annotations

from datetime import datetime
from typing import Any, Iterable

from django.conf import settings
from django.db.models import F, Subquery

from catalog.models import Offer
from integrations.models import Channel, ChannelOffer
from integrations.runs import JobContext
from syncsite.bulk import CHUNK, chunked, insert_ignore, save_all

from .types import LineResult, StockLine


class StockChannel:
    #: `System` value of the marketplace
    system: str = ""
    #: its settings block (syncsite/settings/integrations.py)
    settings_name: str = ""
    #: items (offer-warehouse pairs) in one stock update
    batch_max: int = 1
    #: the API's largest accepted quantity
    ceiling: int | None = None
    #: seconds between two updates of one (offer, warehouse) pair (Ozon: 30), 0 = no rule
    pair_interval: float = 0.0

    # -- configuration --------------------------------------------------------------------------
    @property
    def conf(self) -> dict:
        return getattr(settings, self.settings_name)

    def configured(self) -> bool:
        raise NotImplementedError

    def default_warehouse(self) -> str:
        """The marketplace warehouse our stock goes to unless the admin maps warehouses."""
        return str(self.conf.get("WAREHOUSE_ID") or "").strip()

    def warehouse_error(self, external_id: str) -> str | None:
        """Why a marketplace warehouse id cannot be used (all three use integer ids)."""
        return None if str(external_id).isdigit() else f"warehouse id {external_id!r} is not a number"

    def key_error(self, key: str) -> str | None:
        """Why an offer key cannot be sent; None if it can."""
        return None if key.strip() else "no key: set the marketplace key in the admin"

    # -- the calls ------------------------------------------------------------------------------
    def open(self) -> Any:
        """A client for the stock calls (a context manager with `.stats`)."""
        raise NotImplementedError

    def batch_group(self, line: StockLine) -> str:
        """Lines with different groups never share a call (WB: one call per warehouse)."""
        return ""

    def push(self, client: Any, lines: list[StockLine], *, at: datetime) -> list[LineResult]:
        """Send one batch (at most `batch_max` lines, one group) and return a result per line.
        Transport, rate-limit and credential errors are raised (typed); a rejected item or
        a rejected batch is a LineResult."""
        raise NotImplementedError

    # -- keys -----------------------------------------------------------------------------------
    def offers_sync(self, channel: Channel, ctx: JobContext, *, full: bool) -> None:
        """Make sure our offers have a ChannelOffer row with a key (defaults per interfaces.md).
        SKU-keyed marketplaces (Ozon, Yandex Market): every offer, key = SKU — archived ones too,
        so a listing we archived is told 0 rather than left selling; a full run also follows SKU
        changes for keys that were matched automatically."""
        have = ChannelOffer.objects.filter(channel=channel).values("offer_id")
        missing = Offer.objects.exclude(pk__in=Subquery(have)).values_list("pk", "sku")
        created = 0
        for chunk in chunked(list(missing), CHUNK):
            insert_ignore(ChannelOffer, [ChannelOffer(channel=channel, offer_id=pk, external_key=sku[:255])
                                         for pk, sku in chunk])
            created += len(chunk)
        ctx.count(f"{self.system}_offers_added", created)
        if full:
            moved = list(ChannelOffer.objects.filter(channel=channel, key_source=ChannelOffer.KeySource.AUTO)
                         .exclude(external_key=F("offer__sku")).select_related("offer"))
            taken = set(ChannelOffer.objects.filter(channel=channel, external_key__in=[co.offer.sku for co in moved])
                        .values_list("external_key", flat=True)) if moved else set()
            changed = []
            for co in moved:
                if co.offer.sku not in taken:
                    co.external_key, co.status = co.offer.sku[:255], ChannelOffer.Status.PENDING
                    changed.append(co)
            save_all(ChannelOffer, changed, fields=["external_key", "status"])
            ctx.count(f"{self.system}_keys_followed_sku", len(changed))


def chunk_lines(lines: Iterable[StockLine], size: int) -> list[list[StockLine]]:
    lines = list(lines)
    return [lines[i:i + size] for i in range(0, len(lines), size)]
