"""Integration state: bindings (our row <-> upstream id), job runs and job state (cursor, lock),
marketplace stock channels."""
from decimal import Decimal

from django.core.validators import MaxValueValidator, MinValueValidator
from django.db import models
from django.db.models import Q
from django.utils import timezone


class System(models.TextChoices):
    MOYSKLAD = "moysklad", "MoySklad"
    OZON = "ozon", "Ozon"
    WILDBERRIES = "wildberries", "Wildberries"
    YANDEX_MARKET = "yandex_market", "Yandex Market"
    ONEC = "onec", "1C"
    SUPPLIER = "supplier", "Supplier"


class Binding(models.Model):
    """Abstract binding. `external_id` is the upstream's primary key; `external_code` the
    seller-facing key (article, offer id, our own export code). Never two meanings in one column."""

    system = models.CharField(max_length=16, choices=System.choices, default=System.MOYSKLAD)
    external_id = models.CharField(max_length=64)
    external_code = models.CharField(max_length=255, blank=True)
    external_updated_at = models.DateTimeField(null=True, blank=True)
    synced_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        abstract = True

    def __str__(self) -> str:
        return f"{self.system}:{self.external_id}"


def _binding_constraints(prefix: str, local: str) -> list:
    return [
        models.UniqueConstraint(fields=["system", "external_id"], name=f"{prefix}_unique_external"),
        models.UniqueConstraint(fields=["system", local], name=f"{prefix}_unique_local"),
    ]


class CategoryBinding(Binding):
    category = models.ForeignKey("catalog.Category", on_delete=models.CASCADE, related_name="bindings")

    class Meta:
        constraints = _binding_constraints("categorybinding", "category")


class ProductBinding(Binding):
    product = models.ForeignKey("catalog.Product", on_delete=models.CASCADE, related_name="bindings")

    class Meta:
        constraints = _binding_constraints("productbinding", "product")


class OfferBinding(Binding):
    """MoySklad: the product id (no variants) or the variant id — the stock reports' assortmentId."""

    offer = models.ForeignKey("catalog.Offer", on_delete=models.CASCADE, related_name="bindings")
    kind = models.CharField(max_length=16, default="product", help_text="product or variant")

    class Meta:
        constraints = _binding_constraints("offerbinding", "offer")


class WarehouseBinding(Binding):
    warehouse = models.ForeignKey("stock.Warehouse", on_delete=models.CASCADE, related_name="bindings")

    class Meta:
        constraints = _binding_constraints("warehousebinding", "warehouse")


class JobRun(models.Model):
    class Status(models.TextChoices):
        RUNNING = "running", "Running"
        SUCCESS = "success", "Success"
        FAILED = "failed", "Failed"
        NOT_CONFIGURED = "not_configured", "Not configured"
        SKIPPED = "skipped", "Skipped (already running)"

    job = models.CharField(max_length=64, db_index=True)
    full = models.BooleanField(default=False)
    trigger = models.CharField(max_length=32, default="beat", help_text="beat, command, admin, event")
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.RUNNING, db_index=True)
    started_at = models.DateTimeField(db_index=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    heartbeat_at = models.DateTimeField(null=True, blank=True)
    window_from = models.DateTimeField(null=True, blank=True, help_text="Delta window start (None: full)")
    counts = models.JSONField(default=dict, blank=True)
    progress_done = models.PositiveIntegerField(default=0)
    progress_total = models.PositiveIntegerField(null=True, blank=True)
    errors = models.JSONField(default=list, blank=True, help_text="Per-record errors (first 200)")
    error_count = models.PositiveIntegerField(default=0)
    message = models.TextField(blank=True)

    class Meta:
        ordering = ("-started_at", "-id")
        indexes = [models.Index(fields=["job", "-started_at"])]

    def __str__(self) -> str:
        from django.utils import timezone

        return f"{self.job} {timezone.localtime(self.started_at):%Y-%m-%d %H:%M:%S} {self.status}"

    @property
    def duration(self):
        if self.finished_at and self.started_at:
            return self.finished_at - self.started_at
        return None


class JobState(models.Model):
    """One row per job: its cursor and its lease lock. The lock is an atomic conditional UPDATE,
    so it works the same on SQLite and PostgreSQL and frees itself if a worker dies."""

    job = models.CharField(max_length=64, primary_key=True)
    cursor = models.DateTimeField(null=True, blank=True, help_text="Start of the last successful run")
    full_cursor = models.DateTimeField(null=True, blank=True, help_text="Start of the last successful full run")
    locked_by = models.CharField(max_length=128, blank=True)
    locked_until = models.DateTimeField(null=True, blank=True)
    last_run = models.ForeignKey(JobRun, null=True, blank=True, on_delete=models.SET_NULL, related_name="+")

    class Meta:
        constraints = [
            models.CheckConstraint(condition=Q(locked_by="") | Q(locked_until__isnull=False), name="jobstate_lock_has_lease"),
        ]

    def __str__(self) -> str:
        return self.job


class ProcessHeartbeat(models.Model):
    """A Celery worker or beat saying it is alive, every `syncsite.heartbeat.INTERVAL` seconds.
    `/health/` names a process kind none of whose rows is fresh; each container's healthcheck
    looks at its own row. A row per process name (a worker's `celery@host`, beat's host)."""

    class Kind(models.TextChoices):
        WORKER = "worker", "Celery worker"
        BEAT = "beat", "Celery beat"

    kind = models.CharField(max_length=16, choices=Kind.choices)
    name = models.CharField(max_length=255)
    seen_at = models.DateTimeField(db_index=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["kind", "name"], name="heartbeat_unique_process")]

    def __str__(self) -> str:
        return f"{self.kind} {self.name}"


# ------------------------------------------------------------------------------------------------
# Marketplace stock: what each marketplace is told we can sell (integrations/marketplaces/)
# ------------------------------------------------------------------------------------------------
MARKETPLACES = (System.OZON, System.WILDBERRIES, System.YANDEX_MARKET)


class Channel(models.Model):
    """One marketplace we publish stock to, and how. A row is created with the public defaults
    (every warehouse, buffer 0, no cap) the first time the stock job meets the marketplace; the
    manager edits it in the admin. Any change to buffers, cap or warehouses re-checks every offer
    (`settings_changed_at` is newer than their `synced_at`)."""

    class Health(models.TextChoices):
        OK = "ok", "OK"
        UNHEALTHY = "unhealthy", "Unhealthy"

    system = models.CharField(max_length=16, unique=True,
                              choices=[(s.value, s.label) for s in MARKETPLACES])
    enabled = models.BooleanField(default=True, help_text="Off: nothing is pushed to this marketplace")
    buffer_absolute = models.PositiveIntegerField(
        default=0, help_text="Units held back from every offer (safety stock)")
    buffer_percent = models.DecimalField(
        max_digits=5, decimal_places=2, default=Decimal(0),
        validators=[MinValueValidator(Decimal(0)), MaxValueValidator(Decimal(100))],
        help_text="Percent of the available quantity held back; the result is rounded down")
    cap = models.PositiveIntegerField(null=True, blank=True,
                                      help_text="Never publish more than this per offer (empty: no cap)")
    warehouses = models.ManyToManyField("stock.Warehouse", blank=True, related_name="channels",
                                        help_text="Our warehouses this marketplace sells from; none chosen = all")
    health = models.CharField(max_length=16, choices=Health.choices, default=Health.OK)
    health_message = models.TextField(blank=True)
    health_changed_at = models.DateTimeField(null=True, blank=True)
    settings_changed_at = models.DateTimeField(null=True, blank=True,
                                               help_text="Buffers, cap or warehouses last changed")
    catalog_cursor = models.DateTimeField(null=True, blank=True,
                                          help_text="Wildberries: updatedAt of the last content card read")
    catalog_synced_at = models.DateTimeField(null=True, blank=True,
                                             help_text="When the marketplace catalogue was last read for keys")

    class Meta:
        ordering = ("system",)

    def __str__(self) -> str:
        return self.get_system_display()


class ChannelWarehouse(models.Model):
    """Our warehouse -> the marketplace warehouse its stock is published to. A warehouse the
    channel draws from without a row here feeds the one configured in settings
    (OZON_WAREHOUSE_ID, WB_WAREHOUSE_ID, YM_WAREHOUSE_ID)."""

    channel = models.ForeignKey(Channel, on_delete=models.CASCADE, related_name="warehouse_map")
    warehouse = models.ForeignKey("stock.Warehouse", on_delete=models.CASCADE, related_name="+")
    external_id = models.CharField(max_length=64, help_text="The marketplace's warehouse id")

    class Meta:
        constraints = [models.UniqueConstraint(fields=["channel", "warehouse"], name="channelwarehouse_unique")]

    def __str__(self) -> str:
        return f"{self.channel}: {self.warehouse} -> {self.external_id}"


class ChannelOffer(models.Model):
    """One of our offers as a marketplace lists it: the key it goes by there and the stock
    state. `synced` is what the marketplace last accepted per marketplace warehouse;
    `synced_at` is when the offer was last reconciled (pushed, confirmed equal, or its error
    recorded) — a stock row or kick newer than it makes the offer work for the next push."""

    class Status(models.TextChoices):
        PENDING = "pending", "Pending"
        OK = "ok", "OK"
        ERROR = "error", "Error"

    class KeySource(models.TextChoices):
        AUTO = "auto", "Matched automatically"
        MANUAL = "manual", "Set by a manager"

    channel = models.ForeignKey(Channel, on_delete=models.CASCADE, related_name="offers")
    offer = models.ForeignKey("catalog.Offer", on_delete=models.CASCADE, related_name="channel_offers")
    external_key = models.CharField(
        max_length=255, blank=True,
        help_text="Ozon offer_id, Wildberries chrtID (a number), Yandex Market offerId")
    key_source = models.CharField(max_length=8, choices=KeySource.choices, default=KeySource.AUTO,
                                  help_text="Manual keys are never overwritten by matching")
    enabled = models.BooleanField(default=True, help_text="Off: the marketplace is told 0")
    buffer_absolute = models.PositiveIntegerField(null=True, blank=True,
                                                  help_text="Overrides the channel's buffer (units)")
    buffer_percent = models.DecimalField(
        max_digits=5, decimal_places=2, null=True, blank=True,
        validators=[MinValueValidator(Decimal(0)), MaxValueValidator(Decimal(100))],
        help_text="Overrides the channel's buffer (percent)")
    published_qty = models.IntegerField(null=True, blank=True, help_text="What we last sent (all warehouses)")
    published = models.JSONField(default=dict, blank=True, help_text="What we last sent, per marketplace warehouse")
    pushed_at = models.DateTimeField(null=True, blank=True, help_text="When we last sent it")
    synced_qty = models.IntegerField(null=True, blank=True,
                                     help_text="What the marketplace last accepted (all warehouses)")
    synced = models.JSONField(default=dict, blank=True,
                              help_text="What the marketplace last accepted, per marketplace warehouse")
    synced_at = models.DateTimeField(null=True, blank=True, help_text="Last reconciled")
    kicked_at = models.DateTimeField(null=True, blank=True, help_text="Last told that its stock changed")
    status = models.CharField(max_length=8, choices=Status.choices, default=Status.PENDING)
    error = models.TextField(blank=True)
    zero_since = models.DateTimeField(null=True, blank=True,
                                      help_text="The marketplace shows 0 while we have stock to sell, since")

    class Meta:
        ordering = ("channel", "offer")
        constraints = [
            models.UniqueConstraint(fields=["channel", "offer"], name="channeloffer_unique_offer"),
            models.UniqueConstraint(fields=["channel", "external_key"], condition=~Q(external_key=""),
                                    name="channeloffer_unique_key"),
        ]
        indexes = [models.Index(fields=["channel", "status"]), models.Index(fields=["channel", "synced_at"])]

    def __str__(self) -> str:
        return f"{self.channel_id}:{self.external_key or '?'}"


class StockAudit(models.Model):
    """Every change of what a marketplace shows: old and new accepted quantity and what caused it."""

    channel_offer = models.ForeignKey(ChannelOffer, on_delete=models.CASCADE, related_name="audit")
    old = models.IntegerField(null=True, blank=True)
    new = models.IntegerField()
    source = models.CharField(max_length=32, help_text="event, beat, full, command, admin")
    run = models.ForeignKey(JobRun, null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    at = models.DateTimeField(db_index=True)

    class Meta:
        ordering = ("-at", "-id")


class StockAlert(models.Model):
    """A marketplace has shown 0 for hours while we have stock to sell there. One open alert per
    offer and channel until it clears."""

    channel_offer = models.ForeignKey(ChannelOffer, on_delete=models.CASCADE, related_name="alerts")
    opened_at = models.DateTimeField(db_index=True)
    cleared_at = models.DateTimeField(null=True, blank=True)
    message = models.TextField(blank=True)
    notified = models.BooleanField(default=False, help_text="E-mail / Telegram sent")
    notified_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ("-opened_at", "-id")
        constraints = [models.UniqueConstraint(fields=["channel_offer"], condition=Q(cleared_at__isnull=True),
                                               name="stockalert_one_open")]


# ------------------------------------------------------------------------------------------------
# Orders and inbound events (issue 3: orders to MoySklad, statuses and shipments back by webhook)
# ------------------------------------------------------------------------------------------------
from orders.models import OrderStatus  # noqa: E402  (integrations depend on orders, never the reverse)


class OrderBinding(Binding):
    """Our order <-> its MoySklad customerorder. The exporter creates the row (with our stable
    code, the order's UUID, as `external_code`) before it asks MoySklad to create anything, and
    fills `external_id` once MoySklad holds the order: a row with an empty `external_id` and a
    `create_attempted_at` means "MoySklad may already have it; search by externalCode first"."""

    order = models.ForeignKey("orders.Order", on_delete=models.CASCADE, related_name="bindings")
    create_attempted_at = models.DateTimeField(null=True, blank=True,
                                               help_text="A create request was sent (answer unknown until bound)")
    ui_url = models.CharField(max_length=500, blank=True, help_text="The order in MoySklad's web UI")

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["system", "external_id"], condition=~Q(external_id=""),
                                    name="orderbinding_unique_external"),
            models.UniqueConstraint(fields=["system", "order"], name="orderbinding_unique_local"),
            models.UniqueConstraint(fields=["system", "external_code"], condition=~Q(external_code=""),
                                    name="orderbinding_unique_code"),
        ]


class CustomerBinding(Binding):
    """Our customer <-> the MoySklad counterparty their orders go to: a returning customer costs
    no lookups."""

    customer = models.ForeignKey("orders.Customer", on_delete=models.CASCADE, related_name="bindings")

    class Meta:
        # Not unique by counterparty: two of our customers (say, one phone, two e-mails) may be
        # matched to one counterparty upstream.
        constraints = [models.UniqueConstraint(fields=["system", "customer"], name="customerbinding_unique_local")]


class OrderStateMapping(models.Model):
    """A MoySklad order state (by id: managers rename states) -> our unified status. Seeded from
    the account's states by their standard names; managers edit it in the admin. An empty status
    means "this state does not change the site's status"."""

    system = models.CharField(max_length=16, choices=System.choices, default=System.MOYSKLAD)
    state_id = models.CharField(max_length=64)
    name = models.CharField(max_length=255, help_text="The state's name upstream (for people)")
    status = models.CharField(max_length=20, blank=True, choices=OrderStatus.choices)
    seeded = models.BooleanField(default=True, help_text="Set automatically; False once a manager edited it")
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ("system", "name")
        constraints = [models.UniqueConstraint(fields=["system", "state_id"], name="orderstatemapping_unique")]

    def __str__(self) -> str:
        return f"{self.name} → {self.status or '(no change)'}"


class InboundEvent(models.Model):
    """One notification item as received. The row is the record of work; the queue is only a
    signal (a lost signal is found by the sweeper). `dedup_key` is unique: a notification that
    MoySklad repeats (same requestId) is stored once and processed once."""

    class Status(models.TextChoices):
        RECEIVED = "received", "Received"
        PROCESSING = "processing", "Processing"
        DONE = "done", "Done"
        FAILED = "failed", "Failed"
        IGNORED = "ignored", "Ignored"

    system = models.CharField(max_length=16, choices=System.choices, default=System.MOYSKLAD)
    dedup_key = models.CharField(max_length=255)
    request_id = models.CharField(max_length=64, blank=True)
    entity_type = models.CharField(max_length=64)
    action = models.CharField(max_length=16)
    entity_href = models.CharField(max_length=2048, blank=True)
    payload = models.JSONField(default=dict, blank=True)
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.RECEIVED)
    attempts = models.PositiveIntegerField(default=0)
    error = models.TextField(blank=True)
    received_at = models.DateTimeField(db_index=True, default=timezone.now)
    claimed_at = models.DateTimeField(null=True, blank=True)
    # The worker processing the event holds it on a short lease (syncsite.leases) renewed while it
    # works; a row `processing` whose lease ran out lost its worker and is taken up again.
    lease_owner = models.CharField(max_length=128, blank=True, default="")
    lease_until = models.DateTimeField(null=True, blank=True)
    processed_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ("-received_at", "-id")
        constraints = [models.UniqueConstraint(fields=["system", "dedup_key"], name="inboundevent_unique_dedup")]
        indexes = [models.Index(fields=["status", "received_at"], name="inboundevent_sweep")]

    def __str__(self) -> str:
        return f"{self.system} {self.entity_type} {self.action} ({self.status})"
