"""``python -m tests.support.paused_bump FIFO ARGS...``: the real CLI, paused inside a
file-store bump while it holds the store's lock.

The bump stops after it has read the document under its lock and before it writes the
new one: at the ``os.open`` of the new document's temporary file in the locked directory
(docs/protocol.md, "The file store layout": temp file, then ``os.replace``). The pause is
a real one, a fifo (fifo(7)): opening its reading end blocks until the test opens the
writing end, so once the test's ``open`` returns, the bump is there, lock held; it then
reads until the test closes its end, and goes on. Only the standard library's ``os.open``
is wrapped, in this process: every line of the store runs as written.
"""

from __future__ import annotations

import os
import sys
from typing import Any

from spa_version.cli import run

fifo = sys.argv.pop(1)
real_open = os.open
paused_once: list[bool] = []


def pausing_open(path: Any, flags: int, *args: Any, **kwargs: Any) -> int:
    """``os.open``, paused once on the fifo before the first temporary file created in a
    directory descriptor (the store's new document)."""
    creates = flags & os.O_CREAT and flags & os.O_EXCL and kwargs.get("dir_fd") is not None
    if creates and str(path).endswith(".tmp") and not paused_once:
        paused_once.append(True)
        with open(fifo, "rb") as pause:
            pause.read()
    return real_open(path, flags, *args, **kwargs)


os.open = pausing_open
run()
