"""order_place now checks and writes under the strategy's row lock (risk.validator.checks_lock),
so nothing can change between the checks and the write: the gate of 0010 is gone."""

from importlib import import_module

from django.db import migrations

placement_gate = import_module("orders.migrations.0010_placement_gate")


class Migration(migrations.Migration):
    dependencies = [("orders", "0010_placement_gate")]

    operations = [migrations.RunSQL(placement_gate.DROP_GATE, placement_gate.GATE)]
