"""oms_last_price_at(strategy, symbol, exchange): when the price oms_last_price returns was seen.

The sibling of oms_last_price (migration 0006), with the same choice: the strategy's own posted
price's time when it is PAPER and posted one, else the shared market price's. A decision that
needs a price reads both and asks positions.selectors.price_is_stale whether the price may be
used (the one staleness rule); NULL when there is no price.
"""

from django.db import migrations

FUNCTION = """
CREATE OR REPLACE FUNCTION oms_last_price_at(p_strategy_id bigint, p_symbol text, p_exchange text)
RETURNS timestamptz LANGUAGE sql STABLE AS $$
    SELECT CASE
        WHEN oms_own_price(p_strategy_id, p_symbol, p_exchange) IS NOT NULL THEN
            (SELECT updated_at FROM strategy_prices
              WHERE strategy_id = p_strategy_id AND symbol = p_symbol AND exchange = p_exchange)
        ELSE
            (SELECT updated_at FROM market_prices WHERE symbol = p_symbol AND exchange = p_exchange)
    END
$$;
"""

DROP_FUNCTION = "DROP FUNCTION IF EXISTS oms_last_price_at(bigint, text, text);"


class Migration(migrations.Migration):
    dependencies = [
        ("positions", "0012_charges_mismatch_issue"),
    ]

    operations = [migrations.RunSQL(FUNCTION, DROP_FUNCTION)]
