from decimal import Decimal

from django.db import models


class Warehouse(models.Model):
    name = models.CharField(max_length=255)
    code = models.CharField(max_length=64, unique=True, help_text="Stable code shown in the storefront API")
    archived = models.BooleanField(default=False)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ("name",)

    def __str__(self) -> str:
        return self.name


class StockLevel(models.Model):
    """Stock of one offer in one warehouse. `available` = stock − reserve, never below zero."""

    offer = models.ForeignKey("catalog.Offer", on_delete=models.CASCADE, related_name="stock_levels")
    warehouse = models.ForeignKey(Warehouse, on_delete=models.CASCADE, related_name="stock_levels")
    stock = models.DecimalField(max_digits=14, decimal_places=3, default=Decimal(0))
    reserve = models.DecimalField(max_digits=14, decimal_places=3, default=Decimal(0))
    available = models.DecimalField(max_digits=14, decimal_places=3, default=Decimal(0))
    source = models.CharField(max_length=32, default="moysklad")
    checked_at = models.DateTimeField(null=True, blank=True, help_text="When the figure was last read upstream")
    updated_at = models.DateTimeField(auto_now=True, db_index=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["offer", "warehouse"], name="stock_unique_offer_warehouse")]

    def __str__(self) -> str:
        return f"{self.offer_id}@{self.warehouse_id}: {self.available}"
