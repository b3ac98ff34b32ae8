"""The kill switch is ordered by the database, never by a process's clock.

Before: a switch's state was its event with the latest ``created_at``, which the writing
process stamped with its own clock, so a HALT from a machine 60 s behind lost to the ACTIVE
before it. Now:

- a switch's latest event is its highest ``id``. The id is drawn under the kill switch's
  exclusive advisory lock (``risk.selectors.KILL_SWITCH_LOCK``), held until the change
  commits: kill_switch_set takes it first, and the statement trigger below takes it for any
  other INSERT (psql, a script) before the row's id is drawn. So ids follow commit order, and
  "latest = highest id" is exact;
- ``created_at`` is the database's clock at the insert (``db_default``), for display;
- ``v_kill_switch_current`` is the one definition of "a switch's latest event"; the SQL
  function ``oms_kill_switch_state`` (the pre-trade context, oms_order_gate) reads it, and so
  does the admin's board (risk.selectors.kill_switch_board).
"""

from django.db import migrations, models
from django.db.models.functions import Now

# risk.selectors.KILL_SWITCH_LOCK ("KILL"); a test inserts a row while a placement holds the
# shared lock and checks that the insert waits.
KILL_SWITCH_LOCK = 0x4B494C4C

VIEW = """
CREATE VIEW v_kill_switch_current AS
SELECT DISTINCT ON (scope, strategy_id) id, scope, strategy_id, state
  FROM kill_switch_events
 ORDER BY scope, strategy_id, id DESC;
COMMENT ON VIEW v_kill_switch_current IS
    'The latest event of each kill switch (global, and each strategy''s): its highest id.';
"""

# LIMIT 1: the view gives one row per switch anyway; the limit lets the scan stop at it
# (an index scan of kill_switch_latest_idx) instead of reading the switch's whole history.
FUNCTION = """
CREATE OR REPLACE FUNCTION oms_kill_switch_state(p_scope varchar, p_strategy_id bigint)
RETURNS varchar LANGUAGE plpgsql STABLE AS $$
BEGIN
    IF p_strategy_id IS NULL THEN
        RETURN (SELECT state FROM v_kill_switch_current
                 WHERE scope = p_scope AND strategy_id IS NULL LIMIT 1);
    END IF;
    RETURN (SELECT state FROM v_kill_switch_current
             WHERE scope = p_scope AND strategy_id = p_strategy_id LIMIT 1);
END
$$;
"""

# risk 0006's body, restored on the way back.
FUNCTION_BEFORE = """
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

# A BEFORE ... FOR EACH STATEMENT trigger runs before the statement computes its rows, so
# before their ids are drawn from the sequence.
LOCK_TRIGGER = f"""
CREATE FUNCTION oms_kill_switch_insert_lock() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_advisory_xact_lock({KILL_SWITCH_LOCK});
    RETURN NULL;
END
$$;
CREATE TRIGGER kill_switch_insert_lock
    BEFORE INSERT ON kill_switch_events
    FOR EACH STATEMENT EXECUTE FUNCTION oms_kill_switch_insert_lock();
"""
DROP_LOCK_TRIGGER = """
DROP TRIGGER IF EXISTS kill_switch_insert_lock ON kill_switch_events;
DROP FUNCTION IF EXISTS oms_kill_switch_insert_lock();
"""


class Migration(migrations.Migration):
    dependencies = [("risk", "0006_kill_switch_state_function")]

    operations = [
        migrations.AlterModelOptions(
            name="killswitchevent",
            options={
                "ordering": ["-id"],
                "permissions": [
                    ("change_kill_switch", "Can set the kill switch and flatten positions")
                ],
            },
        ),
        migrations.RemoveIndex(model_name="killswitchevent", name="kill_switch_current_idx"),
        migrations.AlterField(
            model_name="killswitchevent",
            name="created_at",
            field=models.DateTimeField(db_default=Now()),
        ),
        migrations.AddIndex(
            model_name="killswitchevent",
            index=models.Index(fields=["scope", "strategy", "-id"], name="kill_switch_latest_idx"),
        ),
        migrations.RunSQL(VIEW, "DROP VIEW IF EXISTS v_kill_switch_current;"),
        migrations.RunSQL(FUNCTION, FUNCTION_BEFORE),
        migrations.RunSQL(LOCK_TRIGGER, DROP_LOCK_TRIGGER),
    ]
