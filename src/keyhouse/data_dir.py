"""The data dir holds secrets: directories 0700, files 0600, whatever the umask.

The SQLite file (and its -wal and -shm) holds API keys, password hashes and
sessions; ``emails/`` holds live password-reset links; ``secret_key`` signs
sessions. Settings call these before anything opens a file there, so that a CLI
run on a fresh install finds its directory (no "unable to open database file")
and a data dir left world-readable by an older version is tightened. Entry points
also set the umask (``PRIVATE_UMASK``) so files made later, by SQLite or Django's
file mail backend, are private too.
"""

from __future__ import annotations

import os
import stat
from pathlib import Path

PRIVATE_UMASK = 0o077
DIR_MODE = 0o700
FILE_MODE = 0o600


def _tighten(path: Path, mode: int) -> None:
    """Drop group and other bits of ``path`` if this user owns it; never widen."""
    try:
        info = path.stat()
    except FileNotFoundError:
        return
    current = stat.S_IMODE(info.st_mode)
    # Only our own files: a data dir pointed at a directory someone else owns
    # (a mistake, e.g. "/") is not ours to change.
    if info.st_uid == os.geteuid() and current & ~mode:
        path.chmod(current & mode)


def private_dir(path: Path) -> None:
    """Create ``path`` 0700 (missing parents with the umask's mode), or tighten it to 0700."""
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        path.mkdir(mode=DIR_MODE)
    except FileExistsError:
        pass
    _tighten(path, DIR_MODE)


def private_data_dir(path: Path) -> None:
    """The data dir 0700, and the secret key an earlier version may have left 0644, 0600."""
    private_dir(path)
    _tighten(path / "secret_key", FILE_MODE)


def private_file(path: Path) -> None:
    """Create ``path`` empty with mode 0600 if missing, else tighten it to 0600.

    SQLite gives its -wal and -shm files the database file's mode, so a database
    file made here keeps them private as well.
    """
    try:
        os.close(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, FILE_MODE))
    except FileExistsError:
        pass
    _tighten(path, FILE_MODE)


def private_sqlite(path: Path) -> None:
    """The database file and its companions (left by an earlier run) are 0600."""
    private_file(path)
    for suffix in ("-wal", "-shm", "-journal"):
        _tighten(path.with_name(path.name + suffix), FILE_MODE)


def private_umask() -> None:
    """Make every file this process creates from now on 0600 and every directory 0700."""
    os.umask(PRIVATE_UMASK)
