"""1C's own state: pushes from its webhook (the record of work; the queue only signals it), the
CommerceML exchange's sessions and uploads, and what 1C told us about its goods and warehouses."""
from django.db import models
from django.utils import timezone


class StockPush(models.Model):
    """One accepted `POST /webhooks/1c/stock/`: its validated items, applied by a worker. A row
    left `received` (the broker was down) is re-signalled by the sweeper."""

    class Status(models.TextChoices):
        RECEIVED = "received", "Received"
        PROCESSING = "processing", "Processing"
        DONE = "done", "Done"
        FAILED = "failed", "Failed"

    items = models.JSONField(default=list, help_text='[{"sku", "quantity", "warehouse"}] as validated')
    item_count = models.PositiveIntegerField(default=0)
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.RECEIVED)
    attempts = models.PositiveIntegerField(default=0)
    counts = models.JSONField(default=dict, blank=True)
    error = models.TextField(blank=True)
    received_at = models.DateTimeField(default=timezone.now, db_index=True)
    claimed_at = models.DateTimeField(null=True, blank=True)
    processed_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ("-received_at", "-id")
        indexes = [models.Index(fields=["status", "received_at"], name="onec_push_sweep")]

    def __str__(self) -> str:
        return f"1C push {self.pk}: {self.item_count} items ({self.status})"


class ExchangeSession(models.Model):
    """A CommerceML exchange session opened by `checkauth`. Only a digest of the cookie value is
    kept, so the table never holds a usable credential."""

    cookie_digest = models.CharField(max_length=64, unique=True)
    exchange_type = models.CharField(max_length=16, default="catalog")
    remote_addr = models.CharField(max_length=64, blank=True)
    created_at = models.DateTimeField(default=timezone.now)
    seen_at = models.DateTimeField(default=timezone.now, db_index=True)

    def __str__(self) -> str:
        return f"1C exchange session {self.pk} ({self.created_at:%Y-%m-%d %H:%M})"


class ExchangeUpload(models.Model):
    """A file 1C sent in one session (appended chunk by chunk on disk) and its import."""

    class State(models.TextChoices):
        UPLOADING = "uploading", "Uploading"
        QUEUED = "queued", "Queued for import"
        IMPORTING = "importing", "Importing"
        DONE = "done", "Imported"
        FAILED = "failed", "Failed"

    session = models.ForeignKey(ExchangeSession, on_delete=models.CASCADE, related_name="uploads")
    filename = models.CharField(max_length=255)
    size = models.BigIntegerField(default=0)
    chunks = models.PositiveIntegerField(default=0)
    state = models.CharField(max_length=16, choices=State.choices, default=State.UPLOADING)
    counts = models.JSONField(default=dict, blank=True)
    error = models.TextField(blank=True)
    created_at = models.DateTimeField(default=timezone.now)
    queued_at = models.DateTimeField(null=True, blank=True)
    started_at = models.DateTimeField(null=True, blank=True)
    heartbeat_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ("-created_at", "-id")
        constraints = [models.UniqueConstraint(fields=["session", "filename"], name="onec_upload_unique_per_session")]
        indexes = [models.Index(fields=["state", "queued_at"], name="onec_upload_sweep")]

    def __str__(self) -> str:
        return f"{self.filename} ({self.state})"


class OnecItem(models.Model):
    """A good or characteristic as 1C's `import.xml` describes it (`Ид`, `Артикул`, barcode):
    `offers.xml` often carries only the `Ид`, and this is how it finds the article to match."""

    onec_id = models.CharField(max_length=160, unique=True, help_text="Ид: productGUID or productGUID#characteristicGUID")
    sku = models.CharField(max_length=255, blank=True, help_text="Артикул")
    barcode = models.CharField(max_length=64, blank=True, help_text="Штрихкод")
    name = models.CharField(max_length=255, blank=True)
    updated_at = models.DateTimeField(default=timezone.now)

    class Meta:
        verbose_name = "1C item"

    def __str__(self) -> str:
        return f"{self.sku or self.onec_id} {self.name}".strip()


class OnecWarehouse(models.Model):
    """A 1C warehouse (`Склад`) by its id, as the latest document named it: offers refer to
    warehouses by id, our warehouses are `1c:{name}`."""

    onec_id = models.CharField(max_length=160, unique=True)
    name = models.CharField(max_length=255)
    updated_at = models.DateTimeField(default=timezone.now)

    class Meta:
        verbose_name = "1C warehouse"

    def __str__(self) -> str:
        return self.name
