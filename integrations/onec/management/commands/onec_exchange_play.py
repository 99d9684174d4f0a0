"""`python manage.py onec_exchange_play [--url SITE] [--every SECONDS]`: plays 1C's "Обмен с
сайтом" against this site's /1c/exchange/ (checkauth, init, file in chunks, import until success,
then the order query), with import.xml + offers.xml naming our own offers' SKUs in two 1C
warehouses. `make run` starts it with the sandbox; `--every` repeats it as 1C's scheduled
exchange does."""
from __future__ import annotations

import time

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError

from catalog.models import Offer
from integrations.sandbox.onec import ExchangeFailed, demo_files, play_exchange


class Command(BaseCommand):
    help = "Play 1C's CommerceML exchange against this site (sandbox/demo)"

    def add_arguments(self, parser):
        parser.add_argument("--url", default="", help="the site (default SITE_URL)")
        parser.add_argument("--limit", type=int, default=200, help="offers the documents name")
        parser.add_argument("--shape", default="2.07", choices=["2.07", "2.05", "rests"])
        parser.add_argument("--every", type=float, default=0, help="repeat every N seconds (0: once)")
        parser.add_argument("--wait-for-catalog", type=float, default=0,
                            help="wait up to N seconds for offers to exist (the first catalog sync)")

    def handle(self, *args, **options):
        site = (options["url"] or settings.SITE_URL).rstrip("/")
        conf = settings.ONEC
        if not (conf.get("EXCHANGE_LOGIN") and conf.get("EXCHANGE_PASSWORD")):
            raise CommandError("set ONEC_EXCHANGE_LOGIN and ONEC_EXCHANGE_PASSWORD first")
        deadline = time.monotonic() + options["wait_for_catalog"]
        while not Offer.objects.exists() and time.monotonic() < deadline:
            time.sleep(5)
        while True:
            skus = list(Offer.objects.order_by("pk").values_list("sku", flat=True)[:options["limit"]])
            try:
                play_exchange(f"{site}/1c/exchange/", demo_files(skus or ["DEMO-1"], shape=options["shape"]),
                              login=conf["EXCHANGE_LOGIN"], password=conf["EXCHANGE_PASSWORD"],
                              log=lambda line: self.stdout.write(line))
                self.stdout.write(self.style.SUCCESS(f"1c exchange done: {len(skus)} offers"))
            except (ExchangeFailed, OSError) as exc:
                if not options["every"]:
                    raise CommandError(f"1c exchange failed: {exc}") from exc
                self.stderr.write(f"1c exchange failed: {exc}")
            if not options["every"]:
                return
            time.sleep(options["every"])
