"""Placement in one statement: the gate every new order passes, and two redundant indexes gone.

oms_order_gate runs first in order_place's writing statement (orders.services), before the
order row, its event, its job and its rate count, which are written only when it answers
'open'. It takes the order's client_order_id lock, then the kill switch's shared lock, and
re-reads in fresh snapshots (a VOLATILE function's statements each take one under READ
COMMITTED) what the pre-trade checks read before it without those locks:
- 'placed': an order with this client_order_id exists now (a replay, answered with it);
- 'recheck': a kill switch changed since the checks (order_place checks again, locked);
- 'open': nothing changed; the order may be written.
The lock keys come from the caller, so they are defined once, in Python.
"""

import django.db.models.deletion
from django.db import migrations, models

GATE = """
CREATE OR REPLACE FUNCTION oms_order_gate(
    p_order_lock text,
    p_strategy_id bigint,
    p_client_order_id varchar,
    p_kill_switch_lock bigint,
    p_global_seen varchar,
    p_strategy_seen varchar
) RETURNS varchar LANGUAGE plpgsql VOLATILE AS $$
BEGIN
    PERFORM pg_advisory_xact_lock(hashtextextended(p_order_lock, 0));
    IF EXISTS (SELECT FROM orders
                WHERE strategy_id = p_strategy_id AND client_order_id = p_client_order_id) THEN
        RETURN 'placed';
    END IF;
    PERFORM pg_advisory_xact_lock_shared(p_kill_switch_lock);
    IF oms_kill_switch_state('GLOBAL', NULL) IS DISTINCT FROM p_global_seen
       OR oms_kill_switch_state('STRATEGY', p_strategy_id) IS DISTINCT FROM p_strategy_seen THEN
        RETURN 'recheck';
    END IF;
    RETURN 'open';
END
$$;
"""
DROP_GATE = (
    "DROP FUNCTION IF EXISTS oms_order_gate(text, bigint, varchar, bigint, varchar, varchar);"
)


class Migration(migrations.Migration):
    dependencies = [
        ("orders", "0009_drop_redundant_fk_indexes"),
        ("risk", "0006_kill_switch_state_function"),
    ]

    operations = [
        migrations.AlterField(
            model_name="order",
            name="broker_tag",
            field=models.CharField(
                help_text="Our reference, sent to the broker as its tag.", max_length=20
            ),
        ),
        migrations.AlterField(
            model_name="orderevent",
            name="order",
            field=models.ForeignKey(
                db_index=False,
                on_delete=django.db.models.deletion.PROTECT,
                related_name="events",
                to="orders.order",
            ),
        ),
        migrations.AddConstraint(
            model_name="order",
            constraint=models.UniqueConstraint(
                fields=("broker_tag",), name="orders_broker_tag_key"
            ),
        ),
        migrations.RunSQL(GATE, DROP_GATE),
    ]
