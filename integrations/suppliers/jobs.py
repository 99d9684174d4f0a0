"""The `supplier-stock` job. From beat (or the admin) it hands each active supplier to its own
Celery task (`suppliers.read`), so a slow or failing supplier delays no other and is retried on
its own; `manage.py sync supplier-stock` runs the same reads one after another in this process."""
from __future__ import annotations

from datetime import timedelta

from integrations.runs import JobContext

from .models import Supplier

OVERLAP = timedelta(0)  # each supplier keeps its own cursor (Supplier.delta_cursor)


def configured() -> bool:
    return Supplier.objects.filter(active=True).exists()


def supplier_stock(ctx: JobContext) -> None:
    slugs = list(Supplier.objects.filter(active=True).order_by("slug").values_list("slug", flat=True))
    ctx.set_total(len(slugs))
    if ctx.run.trigger in ("beat", "admin"):
        from syncsite import publish as publisher

        from .tasks import supplier_read_task

        for slug in slugs:
            if publisher.publish(supplier_read_task, slug, ctx.full):
                ctx.count("queued")
            else:
                ctx.error(slug, "could not queue the read (broker down); the next run tries again")
            ctx.advance()
        return
    from .sync import ReadResult, SupplierBusy, supplier_read

    for supplier in Supplier.objects.filter(slug__in=slugs).order_by("slug"):
        result = ReadResult()
        try:
            supplier_read(supplier, full=ctx.full, result=result)
            ctx.count("suppliers_ok")
        except SupplierBusy as exc:
            ctx.count("suppliers_busy")
            ctx.error(supplier.slug, str(exc))
        except Exception as exc:  # one supplier's failure is recorded; the others still run
            ctx.count("suppliers_failed")
            ctx.error(supplier.slug, f"{exc.__class__.__name__}: {exc}")
        for key, n in result.counts.items():
            ctx.count(key, n)
        for error in result.errors[:20]:
            ctx.error(f"{supplier.slug} {error['ref']}", error["error"])
        ctx.advance()
