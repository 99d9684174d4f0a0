"""Integration state: bindings (our row <-> upstream id), job runs and job state (cursor, lock)."""
from django.db import models
from django.db.models import Q


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
        return f"{self.job} {self.started_at:%Y-%m-%d %H:%M:%S} {self.status}"

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
