"""Short leases on database rows, renewed by a heartbeat while the work runs.

A lease is two columns on the row that *is* the work (an inbound event, an order waiting for its
export, a job's state row): who holds it (`owner`) and until when (`until`). Taking, renewing and
releasing are each one conditional UPDATE, so they are atomic on PostgreSQL and on SQLite alike
and need no extra table, lock server or Redis. Times come from the database's clock (`Now()`),
so workers on hosts whose clocks disagree still agree on who holds what.

A lease is short (`LEASE_SECONDS`, 30 s by default). While the work runs, `Lease.kept_alive()`
renews it from a heartbeat thread every third of that, so slow work (a long upstream call, a
rate-limit wait) keeps its rows however long it takes. A worker that dies stops renewing: its rows
are free again at most one lease later, and whoever looks next (the next claim, the sweeper, the
next scheduled run) resumes the work.

    lease = Lease(InboundEvent, owner_field="lease_owner", until_field="lease_until")
    if lease.take([event_id], Q(status="received"), status="processing"):
        with lease.kept_alive():
            ...work...
        lease.release(status="done")

A row is free when nobody holds it, its lease ran out, or this very lease already holds it
(taking twice renews). `release` only ever touches rows this lease still holds: a worker that
stalled past its lease and lost the row to another cannot clear the new holder's lease.
"""
from __future__ import annotations

import logging
import os
import socket
import threading
import uuid
from contextlib import contextmanager
from datetime import timedelta
from typing import Callable, Iterable, Iterator

from django.conf import settings
from django.db import connections
from django.db.models import DateTimeField, ExpressionWrapper, Model, Q
from django.db.models.functions import Now

log = logging.getLogger("syncsite.leases")

#: keys per UPDATE (SQLite allows 999 bound parameters in older builds; a batch is at most 1,000)
CHUNK = 500


def lease_seconds() -> float:
    """The default lease length (`LEASE_SECONDS`): long enough to ride out a slow database write
    between heartbeats, short enough that a dead worker's work resumes within a minute."""
    return float(getattr(settings, "LEASE_SECONDS", 30))


def new_owner() -> str:
    """A holder name that is unique per lease and says where it runs (host, process, thread)."""
    return f"{socket.gethostname()[:60]}:{os.getpid()}:{threading.get_ident()}:{uuid.uuid4().hex[:12]}"


class Lease:
    """One holder's lease on some rows of `model` (the rows' primary keys are kept in `keys`)."""

    def __init__(self, model: type[Model], *, owner_field: str = "lease_owner", until_field: str = "lease_until",
                 ttl: float | timedelta | None = None, owner: str | None = None,
                 on_beat: Callable[[], None] | None = None):
        self.model = model
        self.owner_field, self.until_field = owner_field, until_field
        seconds = ttl.total_seconds() if isinstance(ttl, timedelta) else (ttl if ttl is not None else lease_seconds())
        if seconds <= 0:
            raise ValueError("a lease needs a positive length")
        self.ttl = timedelta(seconds=seconds)
        self.owner = owner or new_owner()
        self.on_beat = on_beat
        self.keys: list = []
        #: set by a renewal that found rows of ours taken by someone else (we stalled past the lease)
        self.lost = False
        self._lock = threading.Lock()
        self._heartbeat: tuple[threading.Thread, threading.Event] | None = None

    # -- the three conditional UPDATEs ------------------------------------------------------------
    def _until(self):
        return ExpressionWrapper(Now() + self.ttl, output_field=DateTimeField())

    def _free(self) -> Q:
        return (Q(**{self.owner_field: ""}) | Q(**{f"{self.until_field}__isnull": True})
                | Q(**{f"{self.until_field}__lt": Now()}) | Q(**{self.owner_field: self.owner}))

    def _rows(self, keys: list):
        return self.model._default_manager.filter(pk__in=keys)

    def take(self, keys: Iterable, where: Q | None = None, **also) -> int:
        """Take the rows with these primary keys that match `where` and are free; `also` are more
        column updates made in the same statement (a status, a counter). Returns how many rows
        this call took; `keys` then lists every row the lease holds."""
        wanted = list(dict.fromkeys(keys))
        taken: list = []
        for start in range(0, len(wanted), CHUNK):
            chunk = wanted[start:start + CHUNK]
            rows = self._rows(chunk).filter(self._free())
            if where is not None:
                rows = rows.filter(where)
            n = rows.update(**{self.owner_field: self.owner, self.until_field: self._until()}, **also)
            if n == len(chunk):
                taken += chunk
            elif n:
                ours = set(self._rows(chunk).filter(**{self.owner_field: self.owner}).values_list("pk", flat=True))
                taken += [k for k in chunk if k in ours]
        with self._lock:
            self.keys = list(dict.fromkeys([*self.keys, *taken]))
        return len(taken)

    def take_one(self, key, where: Q | None = None, **also) -> bool:
        return self.take([key], where, **also) == 1

    def renew(self) -> int:
        """Push the end of the lease on every row still held out to now + ttl (the heartbeat does
        this; a work loop may call it too). Returns how many rows were renewed."""
        with self._lock:
            keys = list(self.keys)
        renewed = 0
        for start in range(0, len(keys), CHUNK):
            chunk = keys[start:start + CHUNK]
            renewed += self._rows(chunk).filter(**{self.owner_field: self.owner}).update(
                **{self.until_field: self._until()})
        if renewed < len(keys):
            # Fewer than we think we hold: released meanwhile by our own thread, or taken by
            # another worker after our lease ran out. Only the second is a lost lease.
            asked = set(keys)
            with self._lock:
                still = [k for k in self.keys if k in asked]
            held = sum(self._rows(still[i:i + CHUNK]).filter(**{self.owner_field: self.owner}).count()
                       for i in range(0, len(still), CHUNK))
            if held < len(still):
                self.lost = True
                log.warning("lease.lost model=%s owner=%s held=%s of %s", self.model._meta.label, self.owner,
                            held, len(still))
        return renewed

    def release(self, keys: Iterable | None = None, **also) -> int:
        """Let go of these rows (default: all), making `also` updates in the same statement (the
        work's outcome). Rows another holder took over are left alone. Returns rows released."""
        with self._lock:
            targets = list(self.keys) if keys is None else list(dict.fromkeys(keys))
            leaving = set(targets)
            self.keys = [k for k in self.keys if k not in leaving]
        released = 0
        for start in range(0, len(targets), CHUNK):
            released += self._rows(targets[start:start + CHUNK]).filter(**{self.owner_field: self.owner}).update(
                **{self.owner_field: "", self.until_field: None}, **also)
        return released

    def free(self, keys: Iterable, **also) -> int:
        """Let go of these rows whoever holds them: the work the lease guarded has begun elsewhere
        (a debounced push that started frees the "push scheduled" claim of whoever scheduled it)."""
        keys = list(dict.fromkeys(keys))
        with self._lock:
            self.keys = [k for k in self.keys if k not in set(keys)]
        return sum(self._rows(keys[i:i + CHUNK]).exclude(**{self.owner_field: ""}).update(
            **{self.owner_field: "", self.until_field: None}, **also) for i in range(0, len(keys), CHUNK))

    # -- the heartbeat ----------------------------------------------------------------------------
    @property
    def beat_every(self) -> float:
        return self.ttl.total_seconds() / 3

    @contextmanager
    def kept_alive(self) -> Iterator["Lease"]:
        """Renew the lease from a background thread every third of its length while the block
        runs. The thread uses its own database connection and closes it when it stops."""
        self.start_heartbeat()
        try:
            yield self
        finally:
            self.stop_heartbeat()

    def start_heartbeat(self) -> None:
        """`kept_alive` for code that cannot wrap its work in a `with` block."""
        if self._heartbeat is not None:
            return
        stop = threading.Event()
        thread = threading.Thread(target=self._beat, args=(stop,), daemon=True,
                                  name=f"lease-{self.model._meta.model_name}")
        self._heartbeat = (thread, stop)
        thread.start()

    def stop_heartbeat(self) -> None:
        if self._heartbeat is None:
            return
        thread, stop = self._heartbeat
        self._heartbeat = None
        stop.set()
        # Do not wait on a renewal stuck behind a lock: the thread is a daemon and ends on its own.
        thread.join(timeout=2)

    def _beat(self, stop: threading.Event) -> None:
        try:
            while not stop.wait(self.beat_every):
                if not self.keys:
                    continue
                try:
                    self.renew()
                    if self.on_beat is not None:
                        self.on_beat()
                except Exception:  # the next beat tries again; the lease still has two thirds left
                    log.exception("lease.renew-failed model=%s owner=%s", self.model._meta.label, self.owner)
        finally:
            connections.close_all()  # this thread's connections only
