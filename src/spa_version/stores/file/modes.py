"""The file store's permission model: the modes it creates, whatever the umask, and the
check that processes of other users can follow what a bump wrote.

docs/deploy-haproxy.md, "File store permissions", is the model in full. In short, for
``file://DIR`` and app APP, the deploy user (who bumps) and the app's user may differ:

=====================  ======  ===========================================================
path                   mode    why
=====================  ======  ===========================================================
``DIR``                0755    every user reaches the document; only the deploy user writes
``DIR/APP.json``       0644    the release is public anyway (every response carries it)
``DIR/APP.fleet/``     1777    every process adds its own heartbeat record; the sticky bit
                               lets only a record's owner (or DIR's) replace or remove it,
                               as in ``/tmp`` (chmod(1), "Restricted Deletion Flag")
``DIR/APP.fleet/*``    0644    each record, readable by ``status`` and ``bump --wait``
=====================  ======  ===========================================================

``os.mkdir`` and ``open`` apply the umask (a hardened host has 077), so the store sets
each mode with ``chmod`` after creating the path. A directory that already exists keeps
its mode: an operator who chose another model (a group shared by the deploy and app
users, ``2770``) keeps it.
"""

from __future__ import annotations

import os
import stat
from pathlib import Path

__all__ = [
    "DIRECTORY_MODE",
    "DOCUMENT_MODE",
    "FLEET_DIRECTORY_MODE",
    "RECORD_MODE",
    "make_directory",
    "sharing_problem",
]

DIRECTORY_MODE = 0o755
DOCUMENT_MODE = 0o644
FLEET_DIRECTORY_MODE = 0o1777
RECORD_MODE = 0o644

#: Mode bits that let a user other than the owner do something: group or other.
_OTHERS_SEARCH = stat.S_IXGRP | stat.S_IXOTH
_OTHERS_READ = stat.S_IRGRP | stat.S_IROTH
_OTHERS_WRITE = stat.S_IWGRP | stat.S_IWOTH


def make_directory(path: Path, mode: int) -> None:
    """Create the directory *path* with exactly *mode* (any missing parent with
    `DIRECTORY_MODE`), whatever the umask. An existing directory is left as it is.

    Raises `OSError` as ``os.mkdir`` does (a parent that is a file, no permission, ...).
    """
    try:
        os.mkdir(path, mode)
    except FileExistsError:
        return  # the operator's choice, or another process's that was first: keep its mode
    except FileNotFoundError:
        if path.parent == path:
            raise
        make_directory(path.parent, DIRECTORY_MODE)
        try:
            # Once only: a parent that "exists" but leads nowhere (a dangling symlink)
            # raises FileNotFoundError again, as it is, rather than looping.
            os.mkdir(path, mode)
        except FileExistsError:
            return
    os.chmod(path, mode)  # ours: os.mkdir applied the umask; set what the model says


def sharing_problem(directory: Path, document: Path, fleet: Path) -> str | None:
    """Why a process of another user cannot follow the store, in one clause (``PATH is
    mode 0700 (others cannot search it)``); None when the modes let it (or cannot be read).

    Checked from the mode bits alone, counting group or other as "another user" (the
    app's user may share the directory's group): every directory from the root down to
    *directory* must be searchable, *document* readable, and *fleet* (if it exists)
    searchable and writable, so that the app can report its heartbeat.
    """
    try:
        absolute = directory.absolute()
        for path in (*reversed(absolute.parents), absolute):
            mode = os.stat(path).st_mode
            if not mode & _OTHERS_SEARCH:
                return f"{path} is mode {_octal(mode)} (others cannot search it)"
        mode = os.stat(document).st_mode
        if not mode & _OTHERS_READ:
            return f"{document} is mode {_octal(mode)} (others cannot read it)"
        try:
            mode = os.stat(fleet).st_mode
        except FileNotFoundError:
            return None
        if not (mode & _OTHERS_SEARCH and mode & _OTHERS_WRITE):
            return f"{fleet} is mode {_octal(mode)} (others cannot write their heartbeats there)"
    except OSError:
        return None
    return None


def _octal(mode: int) -> str:
    return f"{stat.S_IMODE(mode):04o}"
