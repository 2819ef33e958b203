"""The one backoff of the package: growing pauses between tries of something
that may succeed later (a transient submit error, a status call, a job that
has not exited yet).

:func:`delays` is the schedule (``first``, times ``factor``, at most ``cap``);
:func:`retry` calls a function again on the given exceptions, a bounded number
of times; :func:`wait_until` polls until a condition holds or a timeout passes.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from typing import Any, TypeVar

__all__ = ["delays", "retry", "wait_until"]

T = TypeVar("T")


def delays(first: float, *, factor: float = 2.0, cap: float | None = None) -> Iterator[float]:
    """``first, first*factor, first*factor**2, ...`` (never above ``cap``), without end."""
    delay = first if cap is None else min(first, cap)
    while True:
        yield delay
        delay *= factor
        if cap is not None:
            delay = min(delay, cap)


def retry(fn: Callable[[], T], *, retry_on: type[BaseException] | tuple[type[BaseException], ...],
          retries: int, first: float = 1.0, factor: float = 2.0, cap: float | None = None,
          sleep: Callable[[float], Any] = time.sleep,
          on_retry: Callable[[int, BaseException], Any] | None = None) -> T:
    """``fn()``, called again after a growing pause when it raises ``retry_on``,
    at most ``retries`` more times; the last error propagates.  ``on_retry(n,
    exc)`` is told of the n-th retry before its pause."""
    for n, delay in enumerate(delays(first, factor=factor, cap=cap)):
        try:
            return fn()
        except retry_on as exc:
            if n >= retries:
                raise
            if on_retry is not None:
                on_retry(n + 1, exc)
            sleep(delay)
    raise AssertionError("unreachable")  # pragma: no cover - delays() never ends


def wait_until(probe: Callable[[], T], timeout: float, *, until: Callable[[T], bool] = bool,
               first: float = 0.05, cap: float = 2.0, sleep: Callable[[float], Any] = time.sleep) -> T:
    """Call ``probe()`` with growing pauses until ``until(value)`` holds or
    ``timeout`` seconds have passed; returns the last value."""
    deadline = time.monotonic() + max(0.0, timeout)
    for delay in delays(first, cap=cap):
        value = probe()
        left = deadline - time.monotonic()
        if until(value) or left <= 0:
            return value
        sleep(min(delay, left))
    raise AssertionError("unreachable")  # pragma: no cover
