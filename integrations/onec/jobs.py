"""`onec-stock`: stock per warehouse from the shop's 1C HTTP service.

Delta: `changedAfter` = the start of the last successful run minus ONEC_OVERLAP_SECONDS (the
runner computes `ctx.since`). Full (nightly, `sync onec-stock --full`, or the first run): no
`changedAfter`; that answer is complete, so what 1C no longer lists becomes 0.

The whole answer is read and checked before anything is written: wrong credentials, 1C down or a
body that is not the expected JSON fail the run with the reason and change nothing. Single items
that are unusable (no SKU, a quantity that is not a whole number >= 0) are recorded on the run and
skipped; a full read with such items is not treated as complete (nothing is zeroed on its word)."""
from __future__ import annotations

from datetime import timedelta

from django.conf import settings

from integrations.http.errors import UpstreamUnavailableError
from integrations.runs import JobContext

from . import client as onec_client
from .mapping import InvalidItems, items_parse
from .services import items_apply


def configured() -> bool:
    return onec_client.is_configured()


def overlap() -> timedelta:
    return timedelta(seconds=int(settings.ONEC.get("OVERLAP_SECONDS") or 300))


def stock_import(ctx: JobContext) -> None:
    full = ctx.since is None
    with onec_client.OnecClient.from_settings() as client:
        data = client.stocks_list(changed_after=None if full else ctx.since)
    try:
        items, bad = items_parse(data)
    except InvalidItems as exc:
        raise UpstreamUnavailableError(
            f'1C GET /hs/stocks/list: the answer is not {{"stocks": [...]}} ({exc.bad[0]["error"]})',
            system="1c", method="GET", url="/hs/stocks/list") from None
    for problem in bad:
        ctx.error(f"#{problem['index']} {problem.get('sku') or ''}".strip(), problem["error"])
    ctx.set_total(len(items))
    result = items_apply(items=items, via="full" if full else "sync", checked_at=ctx.started_at,
                         complete=full and not bad)
    for key, n in result.counts.items():
        ctx.count(key, n)
    ctx.advance(len(items))
