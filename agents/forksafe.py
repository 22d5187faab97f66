"""Fresh locks for the OpenTelemetry SDK's metric pipeline in a forked child.

A fork copies every lock in the state it was in: one held by the parent's metric thread at that
moment (collecting observable instruments, or exporting) stays held forever in the child, whose
copy of that thread does not exist, and the child's metrics stop. CPython renews its own module
locks after fork the same way (`_at_fork_reinit`). The walk is limited to objects of the SDK's
metrics package reachable from the provider and its readers.
"""

from __future__ import annotations

import threading
from typing import Any

_LOCK_TYPES = (type(threading.Lock()), type(threading.RLock()))
_PACKAGE = "opentelemetry.sdk.metrics"


def renew_locks(*roots: Any, max_objects: int = 100_000) -> int:
    """Re-initialises (unlocked) every Lock/RLock attribute of SDK metrics objects reachable from `roots`; the count."""
    seen: set[int] = set()
    pending: list[Any] = list(roots)
    renewed = 0
    while pending and len(seen) < max_objects:
        item = pending.pop()
        if id(item) in seen:
            continue
        seen.add(id(item))
        if isinstance(item, dict):
            pending.extend(item.keys())
            pending.extend(item.values())
            continue
        if isinstance(item, list | tuple | set | frozenset):
            pending.extend(item)
            continue
        if not type(item).__module__.startswith(_PACKAGE) and item not in roots:
            continue
        attributes = getattr(item, "__dict__", None)
        if not attributes:
            continue
        for value in list(attributes.values()):
            if isinstance(value, _LOCK_TYPES):
                value._at_fork_reinit()  # type: ignore[union-attr]  # in place: every holder of it sees it free
                renewed += 1
            elif isinstance(value, dict | list | tuple | set | frozenset) or \
                    type(value).__module__.startswith(_PACKAGE):
                pending.append(value)
    return renewed
