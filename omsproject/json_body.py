"""Reading a JSON request body within bounds: the API's parser and the Kite postback share it.

Python's json module recurses once per level of nesting, so a body of a thousand "[" ends in a
RecursionError (a 500) somewhere that depends on how deep the stack already was. The bodies
this OMS reads nest three levels at most (a list of prices): anything deeper than MAX_DEPTH is
refused whole, the same way at every stack depth. NaN and Infinity, which json accepts although
JSON has no such numbers, are refused too: no price may ever be one.
"""

from __future__ import annotations

import json
from typing import Any

MAX_DEPTH = 32
DEPTH_RULE = f"must not nest arrays and objects more than {MAX_DEPTH} levels deep"


class JsonBodyError(ValueError):
    """A body that parses as Python's json but breaks a rule of ours; ``rule`` says which."""

    def __init__(self, rule: str):
        super().__init__(f"body: {rule}")
        self.rule = rule


def json_body_load(text: str | bytes, **options: Any) -> Any:
    """The body's value, or JsonBodyError (too deep, NaN, Infinity); other ValueErrors when
    it is not JSON at all (json.JSONDecodeError, UnicodeDecodeError)."""
    try:
        value = json.loads(text, parse_constant=_not_a_number, **options)
    except RecursionError:
        raise JsonBodyError(DEPTH_RULE) from None
    if _deeper_than(value, MAX_DEPTH):
        raise JsonBodyError(DEPTH_RULE)
    return value


def _not_a_number(name: str) -> Any:
    raise JsonBodyError(f"{name} is not a JSON number; send a finite number")


def _deeper_than(value: Any, limit: int) -> bool:
    """Whether arrays and objects nest more than ``limit`` levels (walked without recursion)."""
    pending = [(value, 1)]
    while pending:
        node, level = pending.pop()
        if isinstance(node, dict):
            children = node.values()
        elif isinstance(node, list):
            children = node
        else:
            continue
        if level > limit:
            return True
        pending.extend((child, level + 1) for child in children)
    return False
