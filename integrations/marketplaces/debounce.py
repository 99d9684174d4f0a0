"""`kick(offer_ids)` — the one way the rest of the system says "stock of these offers changed".

It stamps the offers' ChannelOffers (`kicked_at`, read by the dirty-join) and, unless a push is
already scheduled, schedules one `DEBOUNCE_SECONDS` later. Everything that changes in the
meantime rides on that same push, so a burst of 10,000 changes becomes one run that sends a
handful of full batches — never a call per change. The "already scheduled" flag is a lease (syncsite.leases, the one lease primitive) on a JobState
row; it expires by itself, so a lost task never blocks pushes for long, and the every-minute beat
run is the safety net behind it."""
from __future__ import annotations

import logging
from typing import Iterable

from django.conf import settings
from django.db import connections, router, transaction
from django.utils import timezone

from integrations.models import ChannelOffer, JobState
from syncsite.bulk import CHUNK, chunked
from syncsite.leases import Lease, new_owner

from . import registry

log = logging.getLogger("syncsite.marketplaces")

CLAIM_KEY = "marketplace-stock:push-scheduled"
#: a claim outlives its countdown by this much before another push may be scheduled regardless
CLAIM_GRACE = 30.0


def kick(offer_ids: Iterable[int], *, countdown: float | None = None) -> int:
    """Mark these offers for the marketplaces and schedule a debounced push (after the current
    transaction commits). Returns how many ChannelOffers were marked. Never raises for a broker
    outage: the beat run picks the offers up within a minute."""
    ids = sorted({int(i) for i in offer_ids if i is not None})
    if not ids:
        return 0
    now = timezone.now()
    marked = _stamp(ids, now)
    if registry.any_configured():
        transaction.on_commit(lambda: schedule_push(countdown), robust=True)
    return marked


def _stamp(ids: list[int], now) -> int:
    """kicked_at = now on these offers' ChannelOffers. On PostgreSQL the ids travel as one array
    parameter (a full stock read kicks a few hundred thousand offers: IN lists of a thousand
    placeholders each cost more to build and parse than the update itself)."""
    connection = connections[router.db_for_write(ChannelOffer)]
    if connection.vendor == "postgresql":
        table, qn = ChannelOffer._meta.db_table, connection.ops.quote_name
        column = qn(ChannelOffer._meta.get_field("offer").column)
        with connection.cursor() as cursor:
            cursor.execute(f"UPDATE {qn(table)} SET {qn('kicked_at')} = %s WHERE {column} = ANY(%s)", [now, ids])
            return cursor.rowcount
    return sum(ChannelOffer.objects.filter(offer_id__in=chunk).update(kicked_at=now) for chunk in chunked(ids, CHUNK))


def schedule_push(countdown: float | None = None) -> bool:
    """Schedule one push in `countdown` seconds (default: the debounce) unless one is already
    scheduled. True if this call scheduled it."""
    delay = settings.MARKETPLACES["DEBOUNCE_SECONDS"] if countdown is None else max(0.0, float(countdown))
    if not claim(delay + CLAIM_GRACE):
        return False
    from syncsite import publish as publisher

    from .tasks import push_stock_task

    # The one publisher: never blocks on a dead broker (it logs); the beat run is the safety net.
    if not publisher.publish(push_stock_task, options={"countdown": delay, "expires": delay + 300}):
        log.warning("marketplace.stock.kick-enqueue-failed: the every-minute run will push instead")
        release()
        return False
    return True


# -- the "already scheduled" lease -------------------------------------------------------------------
def _claim_lease(seconds: float = 1.0) -> Lease:
    """The lease primitive every claim uses (syncsite.leases), on this flag's JobState row; each
    claim is its own holder, so a second claim fails while the first one's lease runs."""
    return Lease(JobState, owner_field="locked_by", until_field="locked_until", ttl=max(seconds, 0.001),
                 owner=f"push-scheduled:{new_owner()}")


def claim(seconds: float) -> bool:
    """Take the "push scheduled" lease for `seconds` if nobody holds it (one conditional UPDATE)."""
    JobState.objects.get_or_create(job=CLAIM_KEY)
    return _claim_lease(seconds).take_one(CLAIM_KEY)


def release() -> None:
    """The scheduled push has started: the next kick may schedule another."""
    _claim_lease().free([CLAIM_KEY])
