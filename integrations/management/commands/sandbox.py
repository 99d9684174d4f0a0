"""`manage.py sandbox [--products N] [--port 8100] [--host H] [--no-rate-limit] [--seed S]`:
run the upstream emulators alone, print their base URLs and credentials, serve until Ctrl-C.

A thin wrapper: the server itself (integrations/sandbox/server.py) does not import Django, and
``python -m integrations.sandbox.server`` takes the same options."""
import time

from django.core.management.base import BaseCommand

from integrations.sandbox.server import add_arguments, server_from_options


class Command(BaseCommand):
    help = "Run the upstream emulators (MoySklad, ...) with a generated demo catalog until Ctrl-C."
    requires_system_checks: list = []   # the sandbox needs neither the database nor the apps

    def add_arguments(self, parser):
        add_arguments(parser)

    def handle(self, *args, **options):
        started = time.perf_counter()
        server = server_from_options(options).start()
        self.stdout.write(server.describe())
        self.stdout.write(f"\nReady in {time.perf_counter() - started:.2f} s. Ctrl-C to stop.")
        self.stdout.flush()
        server.serve_forever()
        self.stdout.write("sandbox stopped")
