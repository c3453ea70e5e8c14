"""``python -m tests.support.paused_bump FIFO ARGS...``: the real CLI, paused inside a
file-store bump while it holds the store's lock.

The bump stops after it has read the document under its lock and before it writes the
new one. The pause is a real one, a fifo (fifo(7)): opening its reading end blocks until
the test opens the writing end, so once the test's ``open`` returns, the bump is there,
lock held; it then reads until the test closes its end, and goes on.
"""

from __future__ import annotations

import sys
from typing import Any

from spa_version.cli import run
from spa_version.stores.file import FileStore

fifo = sys.argv.pop(1)
write_document = FileStore._write_document


def paused(self: FileStore, directory_fd: int, doc: dict[str, Any]) -> None:
    with open(fifo, "rb") as pause:
        pause.read()
    write_document(self, directory_fd, doc)


FileStore._write_document = paused  # type: ignore[method-assign]
run()
