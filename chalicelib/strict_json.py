"""JSON from a client, parsed strictly: each key once, numbers exact, nesting bounded.

Both the HTTP bodies and the WebSocket frames are read through ``loads``.
"""

import json
from decimal import Decimal

from chalicelib.errors import BadRequest, clip

MAX_DEPTH = 32  # an order nests 2 deep; Python's parser gives up near 1,000 (or never)


def _no_duplicate_keys(pairs: list[tuple[str, object]]) -> dict:
    body = dict(pairs)
    if len(body) != len(pairs):
        seen: set[str] = set()
        twice = next(k for k, _ in pairs if k in seen or seen.add(k))
        raise BadRequest(f"the key {clip(twice)!r} appears twice", code="duplicate_key")
    return body


def nesting(value) -> int:
    """How deep arrays and objects nest, counted without recursion."""
    deepest, todo = 0, [(value, 1)]
    while todo:
        item, depth = todo.pop()
        if isinstance(item, dict | list):
            deepest = max(deepest, depth)
            todo.extend(
                (child, depth + 1) for child in (item.values() if isinstance(item, dict) else item)
            )
    return deepest


def loads(raw: str | bytes | None, what: str = "the body", too_deep: str = "malformed_json"):
    """The JSON value; ``BadRequest`` (``malformed_json``, ``duplicate_key``, or ``too_deep``
    when it nests deeper than ``MAX_DEPTH``). Numbers with a fraction arrive as ``Decimal``:
    no float ever carries an amount."""
    try:
        value = json.loads(raw or b"", parse_float=Decimal, object_pairs_hook=_no_duplicate_keys)
    except RecursionError:  # nested thousands deep (3.11, 3.12)
        raise BadRequest(f"{what} nests deeper than {MAX_DEPTH}", code=too_deep) from None
    except ValueError:
        raise BadRequest(f"{what} is not valid JSON", code="malformed_json") from None
    if nesting(value) > MAX_DEPTH:  # the same answer where the parser does not recurse
        raise BadRequest(f"{what} nests deeper than {MAX_DEPTH}", code=too_deep)
    return value
