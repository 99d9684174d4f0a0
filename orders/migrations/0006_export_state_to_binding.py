# The MoySklad export state moved to the order's binding (integrations 0008 copied it there).

from django.db import migrations


class Migration(migrations.Migration):

    dependencies = [
        ('orders', '0005_marketplace_orders'),
        ('integrations', '0008_orderbinding_export_outbox'),
    ]

    operations = [
        migrations.RemoveIndex(
            model_name='order',
            name='order_export_outbox',
        ),
        migrations.RemoveField(
            model_name='order',
            name='export_attempts',
        ),
        migrations.RemoveField(
            model_name='order',
            name='export_error',
        ),
        migrations.RemoveField(
            model_name='order',
            name='export_lease_owner',
        ),
        migrations.RemoveField(
            model_name='order',
            name='export_lease_until',
        ),
        migrations.RemoveField(
            model_name='order',
            name='export_state',
        ),
        migrations.RemoveField(
            model_name='order',
            name='exported_at',
        ),
    ]
