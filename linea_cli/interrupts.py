"""When Ctrl-C and SIGTERM may act: everywhere, except in the few steps that must not be cut in two.

Python raises KeyboardInterrupt (and linea's SIGTERM handler its subclass) between any two
bytecodes, so a signal can land after a COMMIT reached the server and before the caller counted
what it committed, or halfway through closing a connection (SQLAlchemy's pool then logs a
traceback). `interrupts_held()` defers the signal to the end of such a step. It is only for steps
that finish by themselves: a lock wait or a long query inside it would leave linea deaf to Ctrl-C.
"""

from __future__ import annotations

import os
import signal
import threading
from collections.abc import Iterator
from contextlib import contextmanager


@contextmanager
def interrupts_held() -> Iterator[None]:
    """Hold SIGINT and SIGTERM back for the block, then deliver the first one received."""
    if threading.current_thread() is not threading.main_thread():
        yield  # signal handlers belong to the main thread; elsewhere there is nothing to hold
        return
    received: list[int] = []
    previous = {
        number: signal.signal(number, lambda n, _frame: received.append(n)) for number in (signal.SIGINT, signal.SIGTERM)
    }
    try:
        yield
    finally:
        for number, handler in previous.items():
            signal.signal(number, handler)
        if received:
            handler = previous[received[0]]
            if callable(handler):
                handler(received[0], None)
            elif handler == signal.SIG_DFL:
                os.kill(os.getpid(), received[0])
