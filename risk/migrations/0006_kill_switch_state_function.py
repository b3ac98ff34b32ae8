"""oms_kill_switch_state(scope, strategy_id): the state a kill switch was last set to.

One definition for every reader: the pre-trade context, the API, the admin, and
oms_order_gate (orders 0010), which re-reads the switches after taking the kill switch's lock.
PL/pgSQL so that its plan is cached per session.
"""

from django.db import migrations

FUNCTION = """
CREATE OR REPLACE FUNCTION oms_kill_switch_state(p_scope varchar, p_strategy_id bigint)
RETURNS varchar LANGUAGE plpgsql STABLE AS $$
BEGIN
    IF p_strategy_id IS NULL THEN
        RETURN (SELECT state FROM kill_switch_events
                 WHERE scope = p_scope AND strategy_id IS NULL
                 ORDER BY created_at DESC, id DESC LIMIT 1);
    END IF;
    RETURN (SELECT state FROM kill_switch_events
             WHERE scope = p_scope AND strategy_id = p_strategy_id
             ORDER BY created_at DESC, id DESC LIMIT 1);
END
$$;
"""


class Migration(migrations.Migration):
    dependencies = [("risk", "0005_roles")]

    operations = [
        migrations.RunSQL(
            FUNCTION, "DROP FUNCTION IF EXISTS oms_kill_switch_state(varchar, bigint);"
        )
    ]
