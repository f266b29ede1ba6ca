"""Render a short user template (DIGEST_SUBJECT) with hard limits on work and size.

Jinja's SandboxedEnvironment stops attribute tricks but not runaway work:
``'x' * 10**9``, ``10**10**10``, ``'x'|center(10**9)``, nested loops over
``range(100000)`` or a recursive macro each hang the process or eat its memory.
Here, every call, filter and arithmetic operator refuses numbers and sizes far
beyond what a one-line template needs, the output is cut once it passes the
size limit, recursion is bounded, and a time budget (checked by a per-thread
trace function while the template runs) ends anything else. Every failure is a
:class:`TemplateLimitError` the caller turns into one line naming the setting.
"""

from __future__ import annotations

import functools
import re
import sys
import time
from collections.abc import Callable, Mapping
from types import FrameType
from typing import Any

import jinja2
from jinja2.sandbox import SandboxedEnvironment

from digest.errors import TemplateLimitError

MAX_NUMBER = 10_000  # largest integer argument, repeat count or exponent result size (digits)
MAX_SIZE = 10_000  # characters or items in any intermediate value, and in the output
SECONDS = 1.0


def _check_value(value: Any) -> Any:
    if isinstance(value, (str, bytes, list, tuple, dict, set)) and len(value) > MAX_SIZE:
        raise TemplateLimitError(f"a value of more than {MAX_SIZE} characters or items")
    return value


def _check_args(args: tuple[Any, ...], kwargs: Mapping[str, Any]) -> None:
    for value in (*args, *kwargs.values()):
        if isinstance(value, int) and not isinstance(value, bool) and abs(value) > MAX_NUMBER:
            raise TemplateLimitError(f"a number larger than {MAX_NUMBER} as an argument")
        _check_value(value)


_WIDE_FORMAT = re.compile(r"\d{5,}|\*")  # a width or precision of 10,000 or more, or a "*" one


class _LimitedEnvironment(SandboxedEnvironment):
    intercepted_binops = frozenset({"*", "**", "%", "+", "//"})

    def __init__(self) -> None:
        super().__init__(undefined=jinja2.StrictUndefined, autoescape=False)
        self.filters = {name: self._limited(f) for name, f in self.filters.items()}

    @staticmethod
    def _limited(function: Callable[..., Any]) -> Callable[..., Any]:
        @functools.wraps(function)
        def limited(*args: Any, **kwargs: Any) -> Any:
            _check_args(args, kwargs)
            return _check_value(function(*args, **kwargs))

        return limited

    def call_binop(self, context: jinja2.runtime.Context, operator: str, left: Any, right: Any) -> Any:
        if operator == "**" and isinstance(left, int) and isinstance(right, int) and right > 64 and abs(left) > 1:
            raise TemplateLimitError("a power too large")
        if operator == "*" and isinstance(left, int) and isinstance(right, int):
            if abs(left).bit_length() + abs(right).bit_length() > 4096:
                raise TemplateLimitError("a number too large")
        elif operator == "*":
            for count, other in ((left, right), (right, left)):
                if isinstance(count, int) and hasattr(other, "__len__") and count * len(other) > MAX_SIZE:
                    raise TemplateLimitError(f"a value of more than {MAX_SIZE} characters or items")
        if operator == "%" and isinstance(left, str) and _WIDE_FORMAT.search(left):
            raise TemplateLimitError("a format width too large")
        return _check_value(super().call_binop(context, operator, left, right))

    def call(__self, __context: jinja2.runtime.Context, __obj: Any, *args: Any, **kwargs: Any) -> Any:
        _check_args(args, kwargs)
        method = getattr(__obj, "__wrapped__", __obj)  # the sandbox wraps str.format
        owner = getattr(method, "__self__", None)
        formats = isinstance(owner, str) and getattr(method, "__name__", "") in ("format", "format_map")
        if formats and _WIDE_FORMAT.search(str(owner)):
            raise TemplateLimitError("a format width too large")
        return _check_value(super().call(__context, __obj, *args, **kwargs))


@functools.lru_cache(maxsize=8)
def _compile(source: str) -> jinja2.Template:
    return _LimitedEnvironment().from_string(source)


def render_limited(source: str, context: Mapping[str, Any], *, limit: int = MAX_SIZE) -> str:
    """``source`` rendered with ``context``; TemplateLimitError (one line) on any failure or excess."""
    try:
        template = _compile(source)
    except jinja2.TemplateError as exc:
        raise TemplateLimitError(str(exc).splitlines()[0] if str(exc) else type(exc).__name__) from None
    deadline = time.monotonic() + SECONDS

    def trace(frame: FrameType, event: str, arg: Any) -> Any:
        if time.monotonic() > deadline:
            raise TemplateLimitError(f"took more than {SECONDS:g} s")
        return trace

    previous = sys.gettrace()
    old_limit = sys.getrecursionlimit()
    # Deep recursion (a macro calling itself) fails fast, well before the interpreter's limit.
    sys.setrecursionlimit(min(old_limit, _depth() + 400))
    sys.settrace(trace)
    size = 0
    out: list[str] = []
    try:
        for chunk in template.generate(**context):
            size += len(chunk)
            out.append(chunk)
            if size > limit:
                break
    except TemplateLimitError:
        raise
    except RecursionError:
        raise TemplateLimitError("recursion too deep") from None
    except (jinja2.TemplateError, ArithmeticError, MemoryError, TypeError, ValueError, LookupError) as exc:
        message = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise TemplateLimitError(message) from None
    finally:
        sys.settrace(previous)
        sys.setrecursionlimit(old_limit)
    return "".join(out)[:limit]


def _depth() -> int:
    depth = 0
    frame: FrameType | None = sys._getframe()
    while frame is not None:
        depth += 1
        frame = frame.f_back
    return depth
