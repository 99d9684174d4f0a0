"""Parse an untrusted JSON body into something the database can always store, or refuse it.

`json.loads` accepts things that fail later, far from the request, as a 500: `NaN` and `Infinity`
(and `1e400`, which reads as infinity) are not JSON and PostgreSQL's jsonb refuses them; `\\u0000`
cannot live in a PostgreSQL text or jsonb value; a lone surrogate (`\\ud800`) cannot be encoded
as UTF-8 at insert; nesting a thousand levels deep raises RecursionError in the parser, and
somewhat less deep raises it again when the value is serialised for the INSERT. `loads` refuses all
of these with `UnsafeJSON` (a ValueError: answer 400), so a caller that stores the result never
meets them at insert time.
"""
from __future__ import annotations

import json
import math
from typing import Any

MAX_DEPTH = 32


class UnsafeJSON(ValueError):
    """Not JSON, or JSON that cannot be stored as it is."""


def _constant(name: str):
    raise UnsafeJSON(f"{name} is not a JSON number")


def _float(text: str) -> float:
    value = float(text)
    if not math.isfinite(value):
        raise UnsafeJSON(f"number {text[:40]} is out of range")
    return value


def _bad_text(value: str) -> str | None:
    if "\x00" in value:
        return "a \\u0000 character"
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        return "a lone surrogate (invalid Unicode)"
    return None


def loads(raw: bytes | str, *, max_depth: int = MAX_DEPTH) -> Any:
    """Parse `raw` (bytes must be UTF-8) and check every string, number and level of nesting."""
    try:
        text = raw.decode("utf-8") if isinstance(raw, (bytes, bytearray)) else raw
        value = json.loads(text, parse_constant=_constant, parse_float=_float)
    except UnsafeJSON:
        raise
    except RecursionError:
        raise UnsafeJSON("nested too deeply") from None
    except UnicodeDecodeError as exc:
        raise UnsafeJSON(f"the body is not UTF-8 ({exc.reason} at byte {exc.start})") from None
    except ValueError as exc:  # JSONDecodeError, and ints longer than Python converts
        raise UnsafeJSON(f"not JSON: {exc}") from None
    check(value, max_depth=max_depth)
    return value


def check(value: Any, *, max_depth: int = MAX_DEPTH) -> None:
    """Walk `value` (no recursion, so no RecursionError) and refuse what cannot be stored."""
    stack = [(value, 1)]
    while stack:
        item, depth = stack.pop()
        if isinstance(item, str):
            problem = _bad_text(item)
            if problem:
                raise UnsafeJSON(f"a string holds {problem}")
        elif isinstance(item, (dict, list)):
            if depth > max_depth:
                raise UnsafeJSON(f"nested deeper than {max_depth} levels")
            if isinstance(item, dict):
                for key, child in item.items():
                    problem = _bad_text(key)
                    if problem:
                        raise UnsafeJSON(f"a key holds {problem}")
                    stack.append((child, depth + 1))
            else:
                stack.extend((child, depth + 1) for child in item)
        elif isinstance(item, float) and not math.isfinite(item):
            raise UnsafeJSON("a number is out of range")
