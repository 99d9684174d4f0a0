"""`manage.py supplier add SLUG --kind api|csv|yml --url URL [--name N] [--token T] [--secret S]
[--realtime] [--zero-missing]` and `manage.py supplier list`."""
from __future__ import annotations

from django.core.exceptions import ValidationError
from django.core.management.base import BaseCommand, CommandError

from catalog.models import ExternalSku

from ...models import Supplier


class Command(BaseCommand):
    help = "Adds or updates a dropshipping supplier (add), or lists them with their last read (list)."

    def add_arguments(self, parser):
        sub = parser.add_subparsers(dest="action", required=True)
        add = sub.add_parser("add", help="add or update a supplier")
        add.add_argument("slug")
        add.add_argument("--kind", choices=[k.value for k in Supplier.Kind], required=True)
        add.add_argument("--url", required=True)
        add.add_argument("--name", default=None)
        add.add_argument("--token", default=None, help="stored encrypted; never printed")
        add.add_argument("--secret", default=None, help="webhook signing secret")
        add.add_argument("--realtime", action="store_true", default=None,
                         help="check stock live at add-to-cart when our figure is stale")
        add.add_argument("--zero-missing", action="store_true", default=None, dest="zero_missing",
                         help="a complete full read sets what the supplier no longer lists to 0")
        add.add_argument("--inactive", action="store_true", help="add it switched off")
        sub.add_parser("list", help="every supplier with its last read")

    def handle(self, *args, **opts):
        if opts["action"] == "list":
            return self._list()
        slug = opts["slug"].strip().lower()
        supplier = Supplier.objects.filter(slug=slug).first()
        created = supplier is None
        supplier = supplier or Supplier(slug=slug)
        supplier.kind, supplier.url = opts["kind"], opts["url"].strip()
        if opts["name"] is not None:
            supplier.name = opts["name"]
        elif created:
            supplier.name = slug
        if opts["token"] is not None:
            supplier.token = opts["token"]
        if opts["secret"] is not None:
            supplier.webhook_secret = opts["secret"]
        if opts["realtime"]:
            supplier.live_check = True
        if opts["zero_missing"]:
            supplier.zero_missing = True
        supplier.active = not opts["inactive"]
        try:
            supplier.full_clean(exclude=["api_dialect"])
        except ValidationError as exc:
            raise CommandError("; ".join(f"{k}: {' '.join(v)}" for k, v in exc.message_dict.items())) from None
        supplier.save()
        supplier.warehouse()
        self.stdout.write(f"{'added' if created else 'updated'} supplier {slug} ({supplier.kind}), "
                          f"warehouse {supplier.warehouse_code}")

    def _list(self):
        rows = list(Supplier.objects.order_by("slug"))
        if not rows:
            self.stdout.write("no suppliers; add one with: manage.py supplier add SLUG --kind api --url URL")
            return
        self.stdout.write(f"{'slug':<20} {'kind':<4} {'active':<6} {'live':<4} {'last read':<26} {'status':<8} "
                          f"{'unmapped':>8}  url")
        for s in rows:
            unmapped = ExternalSku.objects.filter(source=s.source, offer__isnull=True).count()
            last = s.last_sync_at.isoformat(timespec="seconds") if s.last_sync_at else "never"
            self.stdout.write(f"{s.slug:<20} {s.kind:<4} {'yes' if s.active else 'no':<6} "
                              f"{'yes' if s.live_check else 'no':<4} {last:<26} {s.last_status or '-':<8} "
                              f"{unmapped:>8}  {s.url}")
