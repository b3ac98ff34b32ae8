"""strategy_prices: the prices a PAPER strategy posts for itself, apart from the shared
market_prices; and the one definition of the last price a strategy sees.

oms_own_price(strategy, symbol, exchange): the price the strategy posted for itself, if it is
PAPER now (a LIVE strategy never sees a posted price, even one it posted while PAPER).
oms_last_price(strategy, symbol, exchange): its own price, else the shared market price. Read by
the pre-trade context (risk.validator), the paper exchange's matching and fills, and marking;
a feed (shared or a strategy's own) moves exactly the books whose oms_own_price says it is
theirs. SQL functions, so PostgreSQL inlines them into the statements that call them.
"""

import django.db.models.deletion
import django.db.models.functions.math
import pgtrigger.compiler
import pgtrigger.migrations
from django.db import migrations, models

FUNCTIONS = """
CREATE OR REPLACE FUNCTION oms_own_price(p_strategy_id bigint, p_symbol text, p_exchange text)
RETURNS numeric LANGUAGE sql STABLE AS $$
    SELECT own.last_price
      FROM strategy_prices AS own
      JOIN strategies AS strategy ON strategy.id = own.strategy_id
     WHERE own.strategy_id = p_strategy_id AND own.symbol = p_symbol
       AND own.exchange = p_exchange AND strategy.mode = 'PAPER'
$$;

CREATE OR REPLACE FUNCTION oms_last_price(p_strategy_id bigint, p_symbol text, p_exchange text)
RETURNS numeric LANGUAGE sql STABLE AS $$
    SELECT coalesce(
        oms_own_price(p_strategy_id, p_symbol, p_exchange),
        (SELECT last_price FROM market_prices WHERE symbol = p_symbol AND exchange = p_exchange)
    )
$$;
"""

DROP_FUNCTIONS = """
DROP FUNCTION IF EXISTS oms_last_price(bigint, text, text);
DROP FUNCTION IF EXISTS oms_own_price(bigint, text, text);
"""


class Migration(migrations.Migration):
    dependencies = [
        ("orders", "0012_exits"),
        ("positions", "0005_admin_permissions"),
    ]

    operations = [
        migrations.CreateModel(
            name="StrategyPrice",
            fields=[
                (
                    "id",
                    models.BigAutoField(
                        auto_created=True, primary_key=True, serialize=False, verbose_name="ID"
                    ),
                ),
                ("symbol", models.CharField(max_length=50)),
                (
                    "exchange",
                    models.CharField(
                        choices=[
                            ("NSE", "NSE"),
                            ("BSE", "BSE"),
                            ("NFO", "NSE F&O"),
                            ("BFO", "BSE F&O"),
                        ],
                        max_length=5,
                    ),
                ),
                ("last_price", models.DecimalField(decimal_places=4, max_digits=14)),
                ("updated_at", models.DateTimeField(auto_now=True)),
                (
                    "strategy",
                    models.ForeignKey(
                        on_delete=django.db.models.deletion.CASCADE,
                        related_name="+",
                        to="orders.strategy",
                    ),
                ),
            ],
            options={
                "db_table": "strategy_prices",
                "constraints": [
                    models.UniqueConstraint(
                        fields=("strategy", "symbol", "exchange"), name="strategy_price_unique"
                    ),
                    models.CheckConstraint(
                        condition=models.Q(
                            ("last_price__gt", 0),
                            (
                                "last_price",
                                django.db.models.functions.math.Round(models.F("last_price"), 2),
                            ),
                        ),
                        name="strategy_price_on_paisa",
                    ),
                ],
            },
        ),
        pgtrigger.migrations.AddTrigger(
            model_name="strategyprice",
            trigger=pgtrigger.compiler.Trigger(
                name="paper_strategies_only",
                sql=pgtrigger.compiler.UpsertTriggerSql(
                    func="\n                IF NOT EXISTS (SELECT FROM strategies\n                                WHERE id = NEW.strategy_id AND mode = 'PAPER') THEN\n                    RAISE EXCEPTION 'strategy %: only a PAPER strategy posts its own prices',\n                        NEW.strategy_id USING ERRCODE = 'check_violation';\n                END IF;\n                RETURN NEW;\n                ",
                    hash="790a415775b713af3a2203abaa59aa03a48f573d",
                    operation="INSERT OR UPDATE",
                    pgid="pgtrigger_paper_strategies_only_347ea",
                    table="strategy_prices",
                    when="BEFORE",
                ),
            ),
        ),
        migrations.RunSQL(FUNCTIONS, DROP_FUNCTIONS),
    ]
