"""Integration state: bindings (our row <-> upstream id), job runs and job state (cursor, lock),
marketplace stock channels."""
from decimal import Decimal

from django.core.validators import MaxValueValidator, MinValueValidator
from django.db import models
from django.db.models import Q
from django.utils import timezone
from django.utils.translation import gettext_lazy as _


class System(models.TextChoices):
    MOYSKLAD = "moysklad", _("MoySklad")
    OZON = "ozon", _("Ozon")
    WILDBERRIES = "wildberries", _("Wildberries")
    YANDEX_MARKET = "yandex_market", _("Yandex Market")
    ONEC = "onec", _("1C")
    SUPPLIER = "supplier", _("Supplier")


class Binding(models.Model):
    """Abstract binding. `external_id` is the upstream's primary key; `external_code` the
    seller-facing key (article, offer id, our own export code). Never two meanings in one column."""

    system = models.CharField(_("system"), max_length=16, choices=System.choices, default=System.MOYSKLAD)
    external_id = models.CharField(_("external ID"), max_length=64)
    external_code = models.CharField(_("external code"), max_length=255, blank=True)
    external_updated_at = models.DateTimeField(_("external updated at"), null=True, blank=True)
    synced_at = models.DateTimeField(_("synced at"), null=True, blank=True)

    class Meta:
        abstract = True

    def __str__(self) -> str:
        return f"{self.system}:{self.external_id}"


def _binding_constraints(prefix: str, local: str) -> list:
    """The local row first in its unique key: that index then also serves every lookup and
    cascade by the local row, and the foreign key needs no index of its own (db_index=False)."""
    return [
        models.UniqueConstraint(fields=["system", "external_id"], name=f"{prefix}_unique_external"),
        models.UniqueConstraint(fields=[local, "system"], name=f"{prefix}_unique_local"),
    ]


class CategoryBinding(Binding):
    category = models.ForeignKey("catalog.Category", verbose_name=_("category"), on_delete=models.CASCADE,
                                 related_name="bindings", db_index=False)

    class Meta:
        verbose_name = _("category binding")
        verbose_name_plural = _("category bindings")
        constraints = _binding_constraints("categorybinding", "category")


class ProductBinding(Binding):
    product = models.ForeignKey("catalog.Product", verbose_name=_("product"), on_delete=models.CASCADE,
                                related_name="bindings", db_index=False)

    class Meta:
        verbose_name = _("product binding")
        verbose_name_plural = _("product bindings")
        constraints = _binding_constraints("productbinding", "product")


class OfferBinding(Binding):
    """MoySklad: the product id (no variants) or the variant id — the stock reports' assortmentId."""

    offer = models.ForeignKey("catalog.Offer", verbose_name=_("offer"), on_delete=models.CASCADE,
                              related_name="bindings", db_index=False)
    kind = models.CharField(_("kind"), max_length=16, default="product", help_text=_("product or variant"))

    class Meta:
        verbose_name = _("offer binding")
        verbose_name_plural = _("offer bindings")
        constraints = _binding_constraints("offerbinding", "offer")


class WarehouseBinding(Binding):
    warehouse = models.ForeignKey("stock.Warehouse", verbose_name=_("warehouse"), on_delete=models.CASCADE,
                                  related_name="bindings", db_index=False)

    class Meta:
        verbose_name = _("warehouse binding")
        verbose_name_plural = _("warehouse bindings")
        constraints = _binding_constraints("warehousebinding", "warehouse")


class JobRun(models.Model):
    class Status(models.TextChoices):
        RUNNING = "running", _("Running")
        SUCCESS = "success", _("Success")
        FAILED = "failed", _("Failed")
        NOT_CONFIGURED = "not_configured", _("Not configured")
        SKIPPED = "skipped", _("Skipped (already running)")

    job = models.CharField(_("job"), max_length=64, db_index=True)
    full = models.BooleanField(_("full"), default=False)
    trigger = models.CharField(_("trigger"), max_length=32, default="beat", help_text=_("beat, command, admin, event"))
    status = models.CharField(_("status"), max_length=16, choices=Status.choices, default=Status.RUNNING,
                              db_index=True)
    started_at = models.DateTimeField(_("started at"), db_index=True)
    finished_at = models.DateTimeField(_("finished at"), null=True, blank=True)
    heartbeat_at = models.DateTimeField(_("heartbeat at"), null=True, blank=True)
    window_from = models.DateTimeField(_("window from"), null=True, blank=True,
                                       help_text=_("Delta window start (None: full)"))
    counts = models.JSONField(_("counts"), default=dict, blank=True)
    progress_done = models.PositiveIntegerField(_("progress done"), default=0)
    progress_total = models.PositiveIntegerField(_("progress total"), null=True, blank=True)
    errors = models.JSONField(_("errors"), default=list, blank=True, help_text=_("Per-record errors (first 200)"))
    error_count = models.PositiveIntegerField(_("error count"), default=0)
    message = models.TextField(_("message"), blank=True)

    class Meta:
        verbose_name = _("job run")
        verbose_name_plural = _("job runs")
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

    job = models.CharField(_("job"), max_length=64, primary_key=True)
    cursor = models.DateTimeField(_("cursor"), null=True, blank=True, help_text=_("Start of the last successful run"))
    full_cursor = models.DateTimeField(_("full cursor"), null=True, blank=True,
                                       help_text=_("Start of the last successful full run"))
    locked_by = models.CharField(_("locked by"), max_length=128, blank=True)
    locked_until = models.DateTimeField(_("locked until"), null=True, blank=True)
    last_run = models.ForeignKey(JobRun, verbose_name=_("last run"), null=True, blank=True, on_delete=models.SET_NULL,
                                 related_name="+")

    class Meta:
        verbose_name = _("job state")
        verbose_name_plural = _("job states")
        constraints = [
            models.CheckConstraint(condition=Q(locked_by="") | Q(locked_until__isnull=False),
                                   name="jobstate_lock_has_lease"),
        ]

    def __str__(self) -> str:
        return self.job


class ProcessHeartbeat(models.Model):
    """A Celery worker or beat saying it is alive, every `syncsite.heartbeat.INTERVAL` seconds.
    `/health/` names a process kind none of whose rows is fresh; each container's healthcheck
    looks at its own row. A row per process name (a worker's `celery@host`, beat's host)."""

    class Kind(models.TextChoices):
        WORKER = "worker", _("Celery worker")
        BEAT = "beat", _("Celery beat")

    kind = models.CharField(_("kind"), max_length=16, choices=Kind.choices)
    name = models.CharField(_("name"), max_length=255)
    seen_at = models.DateTimeField(_("seen at"), db_index=True)

    class Meta:
        verbose_name = _("process heartbeat")
        verbose_name_plural = _("process heartbeats")
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
        OK = "ok", _("OK")
        UNHEALTHY = "unhealthy", _("Unhealthy")

    system = models.CharField(_("system"), max_length=16, unique=True,
                              choices=[(s.value, s.label) for s in MARKETPLACES])
    enabled = models.BooleanField(_("enabled"), default=True, help_text=_("Off: nothing is pushed to this marketplace"))
    buffer_absolute = models.PositiveIntegerField(
        _("buffer absolute"), default=0, help_text=_("Units held back from every offer (safety stock)"))
    buffer_percent = models.DecimalField(
        _("buffer percent"), max_digits=5, decimal_places=2, default=Decimal(0),
        validators=[MinValueValidator(Decimal(0)), MaxValueValidator(Decimal(100))],
        help_text=_("Percent of the available quantity held back; the result is rounded down"))
    cap = models.PositiveIntegerField(_("cap"), null=True, blank=True,
                                      help_text=_("Never publish more than this per offer (empty: no cap)"))
    warehouses = models.ManyToManyField("stock.Warehouse", verbose_name=_("warehouses"), blank=True,
                                        related_name="channels",
                                        help_text=_("Our warehouses this marketplace sells from; none chosen = all"))
    health = models.CharField(_("health"), max_length=16, choices=Health.choices, default=Health.OK)
    health_message = models.TextField(_("health message"), blank=True)
    health_changed_at = models.DateTimeField(_("health changed at"), null=True, blank=True)
    settings_changed_at = models.DateTimeField(_("settings changed at"), null=True, blank=True,
                                               help_text=_("Buffers, cap or warehouses last changed"))
    catalog_cursor = models.DateTimeField(_("catalog cursor"), null=True, blank=True,
                                          help_text=_("Wildberries: updatedAt of the last content card read"))
    catalog_synced_at = models.DateTimeField(_("catalog synced at"), null=True, blank=True,
                                             help_text=_("When the marketplace catalogue was last read for keys"))

    class Meta:
        verbose_name = _("channel")
        verbose_name_plural = _("channels")
        ordering = ("system",)

    def __str__(self) -> str:
        return self.get_system_display()


class ChannelWarehouse(models.Model):
    """Our warehouse -> the marketplace warehouse its stock is published to. A warehouse the
    channel draws from without a row here feeds the one configured in settings
    (OZON_WAREHOUSE_ID, WB_WAREHOUSE_ID, YM_WAREHOUSE_ID)."""

    channel = models.ForeignKey(Channel, verbose_name=_("channel"), on_delete=models.CASCADE,
                                related_name="warehouse_map")
    warehouse = models.ForeignKey("stock.Warehouse", verbose_name=_("warehouse"), on_delete=models.CASCADE,
                                  related_name="+")
    external_id = models.CharField(_("external ID"), max_length=64, help_text=_("The marketplace's warehouse id"))

    class Meta:
        verbose_name = _("channel warehouse")
        verbose_name_plural = _("channel warehouses")
        constraints = [models.UniqueConstraint(fields=["channel", "warehouse"], name="channelwarehouse_unique")]

    def __str__(self) -> str:
        return f"{self.channel}: {self.warehouse} -> {self.external_id}"


class ChannelOffer(models.Model):
    """One of our offers as a marketplace lists it: the key it goes by there and the stock
    state. `synced` is what the marketplace last accepted per marketplace warehouse;
    `synced_at` is when the offer was last reconciled (pushed, confirmed equal, or its error
    recorded) — a stock row or kick newer than it makes the offer work for the next push."""

    class Status(models.TextChoices):
        PENDING = "pending", _("Pending")
        OK = "ok", _("OK")
        ERROR = "error", _("Error")

    class KeySource(models.TextChoices):
        AUTO = "auto", _("Matched automatically")
        MANUAL = "manual", _("Set by a manager")

    channel = models.ForeignKey(Channel, verbose_name=_("channel"), on_delete=models.CASCADE, related_name="offers")
    offer = models.ForeignKey("catalog.Offer", verbose_name=_("offer"), on_delete=models.CASCADE,
                              related_name="channel_offers")
    external_key = models.CharField(
        _("external key"), max_length=255, blank=True,
        help_text=_("Ozon offer_id, Wildberries chrtID (a number), Yandex Market offerId"))
    key_source = models.CharField(_("key source"), max_length=8, choices=KeySource.choices, default=KeySource.AUTO,
                                  help_text=_("Manual keys are never overwritten by matching"))
    enabled = models.BooleanField(_("enabled"), default=True, help_text=_("Off: the marketplace is told 0"))
    buffer_absolute = models.PositiveIntegerField(_("buffer absolute"), null=True, blank=True,
                                                  help_text=_("Overrides the channel's buffer (units)"))
    buffer_percent = models.DecimalField(
        _("buffer percent"), max_digits=5, decimal_places=2, null=True, blank=True,
        validators=[MinValueValidator(Decimal(0)), MaxValueValidator(Decimal(100))],
        help_text=_("Overrides the channel's buffer (percent)"))
    published_qty = models.IntegerField(_("published qty"), null=True, blank=True,
                                        help_text=_("What we last sent (all warehouses)"))
    published = models.JSONField(_("published"), default=dict, blank=True,
                                 help_text=_("What we last sent, per marketplace warehouse"))
    pushed_at = models.DateTimeField(_("pushed at"), null=True, blank=True, help_text=_("When we last sent it"))
    synced_qty = models.IntegerField(_("synced qty"), null=True, blank=True,
                                     help_text=_("What the marketplace last accepted (all warehouses)"))
    synced = models.JSONField(_("synced"), default=dict, blank=True,
                              help_text=_("What the marketplace last accepted, per marketplace warehouse"))
    synced_at = models.DateTimeField(_("synced at"), null=True, blank=True, help_text=_("Last reconciled"))
    kicked_at = models.DateTimeField(_("kicked at"), null=True, blank=True,
                                     help_text=_("Last told that its stock changed"))
    status = models.CharField(_("status"), max_length=8, choices=Status.choices, default=Status.PENDING)
    error = models.TextField(_("error"), blank=True)
    zero_since = models.DateTimeField(_("zero since"), null=True, blank=True,
                                      help_text=_("The marketplace shows 0 while we have stock to sell, since"))

    class Meta:
        verbose_name = _("channel offer")
        verbose_name_plural = _("channel offers")
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

    channel_offer = models.ForeignKey(ChannelOffer, verbose_name=_("channel offer"), on_delete=models.CASCADE,
                                      related_name="audit")
    old = models.IntegerField(_("old"), null=True, blank=True)
    new = models.IntegerField(_("new"))
    source = models.CharField(_("source"), max_length=32, help_text=_("event, beat, full, command, admin"))
    run = models.ForeignKey(JobRun, verbose_name=_("run"), null=True, blank=True, on_delete=models.SET_NULL,
                            related_name="+")
    at = models.DateTimeField(_("at"), db_index=True)

    class Meta:
        verbose_name = _("stock audit")
        verbose_name_plural = _("stock audits")
        ordering = ("-at", "-id")


class StockAlert(models.Model):
    """A marketplace has shown 0 for hours while we have stock to sell there. One open alert per
    offer and channel until it clears."""

    channel_offer = models.ForeignKey(ChannelOffer, verbose_name=_("channel offer"), on_delete=models.CASCADE,
                                      related_name="alerts")
    opened_at = models.DateTimeField(_("opened at"), db_index=True)
    cleared_at = models.DateTimeField(_("cleared at"), null=True, blank=True)
    message = models.TextField(_("message"), blank=True)
    notified = models.BooleanField(_("notified"), default=False, help_text=_("E-mail / Telegram sent"))
    notified_at = models.DateTimeField(_("notified at"), null=True, blank=True)

    class Meta:
        verbose_name = _("stock alert")
        verbose_name_plural = _("stock alerts")
        ordering = ("-opened_at", "-id")
        constraints = [models.UniqueConstraint(fields=["channel_offer"], condition=Q(cleared_at__isnull=True),
                                               name="stockalert_one_open")]


# ------------------------------------------------------------------------------------------------
# Orders and inbound events (issue 3: orders to MoySklad, statuses and shipments back by webhook)
# ------------------------------------------------------------------------------------------------
from orders.models import ExportState, OrderStatus  # noqa: E402  (integrations depend on orders, never the reverse)


class OrderBinding(Binding):
    """Our order <-> its MoySklad customerorder, and the order's place in the export outbox.
    `orders.services.order_create` creates the row in the transaction that creates the order
    (with our stable code, the order's UUID, as `external_code`, and state pending); the exporter
    fills `external_id` once MoySklad holds the order: a row with an empty `external_id` and a
    `create_attempted_at` means "MoySklad may already have it; search by externalCode first"."""

    order = models.ForeignKey("orders.Order", verbose_name=_("order"), on_delete=models.CASCADE,
                              related_name="bindings")
    create_attempted_at = models.DateTimeField(_("create attempted at"), null=True, blank=True,
                                               help_text=_("A create request was sent (answer unknown until bound)"))
    ui_url = models.CharField(_("MoySklad UI link"), max_length=500, blank=True,
                              help_text=_("The order in MoySklad's web UI"))
    # The export outbox: everything about "this order in MoySklad" is this one row. `orders-export`
    # picks up every row still pending; the exporter holds the row's lease (syncsite.leases) while
    # it works, so two exporters never work on one order.
    export_state = models.CharField(_("export state"), max_length=16, choices=ExportState.choices,
                                    default=ExportState.PENDING)
    export_attempts = models.PositiveIntegerField(_("export attempts"), default=0)
    export_error = models.TextField(_("export error"), blank=True)
    exported_at = models.DateTimeField(_("exported at"), null=True, blank=True)
    export_lease_until = models.DateTimeField(_("export lease until"), null=True, blank=True,
                                              help_text=_("An exporter holds this order until then"))
    export_lease_owner = models.CharField(_("export lease owner"), max_length=128, blank=True)

    class Meta:
        verbose_name = _("order binding")
        verbose_name_plural = _("order bindings")
        indexes = [models.Index(fields=["export_state", "id"], name="orderbinding_export_outbox")]
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

    customer = models.ForeignKey("orders.Customer", verbose_name=_("customer"), on_delete=models.CASCADE,
                                 related_name="bindings")

    class Meta:
        verbose_name = _("customer binding")
        verbose_name_plural = _("customer bindings")
        # Not unique by counterparty: two of our customers (say, one phone, two e-mails) may be
        # matched to one counterparty upstream.
        constraints = [models.UniqueConstraint(fields=["system", "customer"], name="customerbinding_unique_local")]


class OrderStateMapping(models.Model):
    """A MoySklad order state (by id: managers rename states) -> our unified status. Seeded from
    the account's states by their standard names; managers edit it in the admin. An empty status
    means "this state does not change the site's status"."""

    system = models.CharField(_("system"), max_length=16, choices=System.choices, default=System.MOYSKLAD)
    state_id = models.CharField(_("state ID"), max_length=64)
    name = models.CharField(_("name"), max_length=255, help_text=_("The state's name upstream (for people)"))
    status = models.CharField(_("status"), max_length=20, blank=True, choices=OrderStatus.choices)
    seeded = models.BooleanField(_("seeded"), default=True,
                                 help_text=_("Set automatically; False once a manager edited it"))
    updated_at = models.DateTimeField(_("updated at"), auto_now=True)

    class Meta:
        verbose_name = _("order state mapping")
        verbose_name_plural = _("order state mappings")
        ordering = ("system", "name")
        constraints = [models.UniqueConstraint(fields=["system", "state_id"], name="orderstatemapping_unique")]

    def __str__(self) -> str:
        return f"{self.name} → {self.status or '(no change)'}"


class InboundEvent(models.Model):
    """One notification item as received. The row is the record of work; the queue is only a
    signal (a lost signal is found by the sweeper). `dedup_key` is unique: a notification that
    MoySklad repeats (same requestId) is stored once and processed once."""

    class Status(models.TextChoices):
        RECEIVED = "received", _("Received")
        PROCESSING = "processing", _("Processing")
        DONE = "done", _("Done")
        FAILED = "failed", _("Failed")
        IGNORED = "ignored", _("Ignored")

    system = models.CharField(_("system"), max_length=16, choices=System.choices, default=System.MOYSKLAD)
    dedup_key = models.CharField(_("deduplication key"), max_length=255)
    request_id = models.CharField(_("request ID"), max_length=64, blank=True)
    entity_type = models.CharField(_("entity type"), max_length=64)
    action = models.CharField(_("action"), max_length=16)
    entity_href = models.CharField(_("entity link"), max_length=2048, blank=True)
    payload = models.JSONField(_("payload"), default=dict, blank=True)
    status = models.CharField(_("status"), max_length=16, choices=Status.choices, default=Status.RECEIVED)
    attempts = models.PositiveIntegerField(_("attempts"), default=0)
    error = models.TextField(_("error"), blank=True)
    received_at = models.DateTimeField(_("received at"), db_index=True, default=timezone.now)
    claimed_at = models.DateTimeField(_("claimed at"), null=True, blank=True)
    # The worker processing the event holds it on a short lease (syncsite.leases) renewed while it
    # works; a row `processing` whose lease ran out lost its worker and is taken up again.
    lease_owner = models.CharField(_("lease owner"), max_length=128, blank=True, default="")
    lease_until = models.DateTimeField(_("lease until"), null=True, blank=True)
    processed_at = models.DateTimeField(_("processed at"), null=True, blank=True)

    class Meta:
        verbose_name = _("inbound event")
        verbose_name_plural = _("inbound events")
        ordering = ("-received_at", "-id")
        constraints = [models.UniqueConstraint(fields=["system", "dedup_key"], name="inboundevent_unique_dedup")]
        indexes = [models.Index(fields=["status", "received_at"], name="inboundevent_sweep")]

    def __str__(self) -> str:
        return f"{self.system} {self.entity_type} {self.action} ({self.status})"
