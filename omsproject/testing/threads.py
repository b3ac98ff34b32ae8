"""Real threads released together, for the tests of every rule concurrency could break."""

from __future__ import annotations

import threading
from collections.abc import Callable

from django.db import connection


def run_together(functions: list[Callable[[], object]]) -> list[tuple[object, BaseException]]:
    """Start one thread per function, released at once by a barrier; return (result, error).

    Each thread uses its own database connection and closes it (back to the pool) when done.
    """
    barrier = threading.Barrier(len(functions))
    outcomes: list[tuple[object, BaseException | None]] = [(None, None)] * len(functions)

    def run(index: int, function) -> None:
        try:
            barrier.wait()
            outcomes[index] = (function(), None)
        except BaseException as error:  # reported to the test
            outcomes[index] = (None, error)
        finally:
            connection.close()

    threads = [
        threading.Thread(target=run, args=(index, function))
        for index, function in enumerate(functions)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
        assert not thread.is_alive(), "a thread is stuck"
    return outcomes
