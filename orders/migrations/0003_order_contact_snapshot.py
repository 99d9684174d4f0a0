"""Each order keeps the contacts it was placed with. Existing orders take their customer's
current contacts (the best record there is of what they were placed with)."""
from django.db import migrations, models
from django.db.models import OuterRef, Subquery


def fill_from_customer(apps, schema_editor):
    Order = apps.get_model("orders", "Order")
    Customer = apps.get_model("orders", "Customer")
    of_customer = Customer.objects.filter(pk=OuterRef("customer_id"))
    # One UPDATE for the whole table (no row-by-row loop), on SQLite and PostgreSQL alike.
    Order.objects.update(customer_name=Subquery(of_customer.values("name")[:1]),
                         customer_email=Subquery(of_customer.values("email")[:1]),
                         customer_phone=Subquery(of_customer.values("phone")[:1]))


class Migration(migrations.Migration):

    dependencies = [
        ("orders", "0002_status_history_recorded_order"),
    ]

    operations = [
        migrations.AddField(
            model_name="order",
            name="customer_name",
            field=models.CharField(blank=True, max_length=255, verbose_name="name"),
        ),
        migrations.AddField(
            model_name="order",
            name="customer_email",
            field=models.CharField(blank=True, max_length=254, verbose_name="e-mail"),
        ),
        migrations.AddField(
            model_name="order",
            name="customer_phone",
            field=models.CharField(blank=True, max_length=64, verbose_name="phone"),
        ),
        migrations.RunPython(fill_from_customer, migrations.RunPython.noop),
    ]
