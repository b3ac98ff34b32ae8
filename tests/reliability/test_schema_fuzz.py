"""Schemathesis against the cluster's live schema, with three times the examples of
orders/tests/api/test_schema_fuzz.py, sent to both web processes in turn: no 5xx, no answer
outside the schema. Derandomized (CI sees the same run) and bounded in time: past its share of
the budget an operation sends no more examples, and the number sent is printed."""

from __future__ import annotations

import itertools
import time

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from hypothesis.errors import Unsatisfiable
from schemathesis import GenerationMode

from orders.enums import OrderStatus
from orders.models import Order
from orders.tests.api.conftest import make_caller
from orders.tests.api.test_schema_fuzz import CHECKS
from orders.tests.factories import OrderFactory, TradeFactory
from positions.tests.factories import PositionFactory

pytestmark = [pytest.mark.reliability, pytest.mark.django_db(transaction=True)]

EXAMPLES_PER_OPERATION = 75  # 3x the suite's 25
BUDGET_SECONDS = 70.0
MODES = (GenerationMode.POSITIVE, GenerationMode.NEGATIVE)


def test_the_cluster_conforms_to_its_schema(cluster, figures):
    caller = make_caller(name="Fuzzed cluster")
    order = OrderFactory(strategy=caller.strategy, status=OrderStatus.OPEN)
    Order.objects.filter(pk=order.pk).update(broker_order_id="FUZZ-REL-1")
    TradeFactory(order=order, quantity=2)
    PositionFactory(strategy=caller.strategy, symbol="RELIANCE")
    OrderFactory(strategy=caller.strategy)

    urls = cluster.urls
    schema = schemathesis.openapi.from_url(f"{urls[0]}/api/schema/?format=json")
    headers = {"Authorization": f"Bearer {caller.plaintext}"}
    operations = [result.ok() for result in schema.get_all_operations()]
    turns = itertools.cycle(urls)
    failures: list[str] = []
    sent = 0
    cut_short = 0
    began = time.monotonic()
    share = {"deadline": began}  # of the operation being fuzzed

    pairs = [(operation, mode) for operation in operations for mode in MODES]
    for done, (operation, mode) in enumerate(pairs):
        # An even share of what is left of the budget.
        left = BUDGET_SECONDS - (time.monotonic() - began)
        share["deadline"] = time.monotonic() + left / (len(pairs) - done)
        examples = 0

        @given(case=operation.as_strategy(generation_mode=mode))
        @settings(
            max_examples=EXAMPLES_PER_OPERATION,
            deadline=None,
            derandomize=True,
            database=None,
            suppress_health_check=list(HealthCheck),
        )
        def fuzz(case):
            nonlocal examples
            if time.monotonic() > share["deadline"]:
                return
            examples += 1
            case.call_and_validate(base_url=next(turns), headers=headers, checks=CHECKS)

        try:
            fuzz()
        except Unsatisfiable:
            pass  # no negative case exists (no parameters nor body)
        except Exception as error:  # collected, reported all together
            failures.append(f"{operation.label} [{mode}]: {error}")
        sent += examples
        cut_short += time.monotonic() > share["deadline"]
    seconds = time.monotonic() - began

    assert len(operations) >= 11, [operation.label for operation in operations]
    assert not failures, "\n\n".join(failures)
    assert sent >= len(operations) * 25  # at least the suite's own run, whatever the machine
    figures(
        f"{len(operations)} operations x {len(MODES)} modes, up to {EXAMPLES_PER_OPERATION} "
        f"examples each: {sent} requests over {len(urls)} web processes in {seconds:.0f}s "
        f"({cut_short} of {len(pairs)} cut short by the {BUDGET_SECONDS:.0f}s budget); "
        "0 server errors, 0 schema violations"
    )
