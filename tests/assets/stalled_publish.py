"""``spa-version assets publish`` whose copy of one file stalls for good after its first
chunk, so that a kill or Ctrl-C always lands mid-copy (tests/assets/test_interrupted.py).

Run as ``python -m tests.assets.stalled_publish NAME ARGS...``: the CLI runs with ARGS,
and the copy whose temporary file's name ends with NAME writes its first chunk, flushes
it and then sleeps until the process is signalled. Everything else is the real code
path: the stall sits in the file object that `spa_version.publish.files.write_atomically`
opens, so its own clean-up (and nothing of ours) runs on the way out.
"""

from __future__ import annotations

import builtins
import sys
import time
from typing import IO, Any

from spa_version.cli import main
from spa_version.publish import files


class _Stalling:
    """A file whose first write is flushed and then never returns."""

    def __init__(self, file: IO[bytes]) -> None:
        self._file = file

    def write(self, data: bytes) -> int:
        self._file.write(data)
        self._file.flush()
        while True:
            time.sleep(3600)

    def __enter__(self) -> _Stalling:
        return self

    def __exit__(self, *exc: object) -> None:
        self._file.close()

    def __getattr__(self, name: str) -> Any:
        return getattr(self._file, name)


def run(stalled: str, argv: list[str]) -> int:
    def stalling_open(file: Any, mode: str = "r", *args: Any, **kwargs: Any) -> Any:
        opened = builtins.open(file, mode, *args, **kwargs)  # noqa: SIM115 (the caller's `with` closes it)
        # write_atomically creates its temporary file with mode "xb" (never an existing one).
        return _Stalling(opened) if mode == "xb" and str(file).endswith(stalled) else opened

    # A module global shadows the builtin for the code of that module only.
    files.open = stalling_open  # type: ignore[attr-defined]
    return main(argv)


if __name__ == "__main__":
    sys.exit(run(sys.argv[1], sys.argv[2:]))
