"""The data dir holds secrets: directories 0700, files 0600, whatever the umask.

The SQLite file (and its -wal and -shm) holds API keys, password hashes and
sessions; ``emails/`` holds live password-reset links; ``secret_key`` signs
sessions. ``prepare`` runs at start-up (``keyhouse.apps``: every entry point sets
Django up), before anything opens a file there, so that a CLI run on a fresh
install finds its directory (no "unable to open database file") and a data dir
left world-readable by an older version is tightened. Importing the settings
creates nothing. Entry points also set the umask (``PRIVATE_UMASK``) so files made
later, by SQLite or Django's file mail backend, are private too.
"""

from __future__ import annotations

import functools
import os
import secrets
import stat
from pathlib import Path

from django.utils.functional import lazy

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


def _read_or_create_secret_key(data_dir: Path) -> str:
    """The data dir's random secret key, created (mode 0600) if it has none yet."""
    key_file = data_dir / "secret_key"
    try:
        return key_file.read_text().strip()
    except FileNotFoundError:
        pass
    private_dir(data_dir)
    key = secrets.token_urlsafe(50)
    try:
        fd = os.open(key_file, os.O_WRONLY | os.O_CREAT | os.O_EXCL, FILE_MODE)
    except FileExistsError:  # another process won the race: use its key
        return key_file.read_text().strip()
    with os.fdopen(fd, "w") as fh:
        fh.write(key)
    return key


# Once per process: the key is used for every session and CSRF check.
secret_key = functools.cache(_read_or_create_secret_key)


def lazy_secret_key(data_dir: Path) -> str:
    """A str that reads (or creates) the key when first used, so settings import makes no file.

    ``prepare`` uses it at start-up; Django's signing turns it into bytes with
    ``str()``, which reads the key then.
    """
    return lazy(secret_key, str)(data_dir)


def prepare(data_dir: Path, secret: str, sqlite_file: Path | None, mail_dir: Path | None) -> None:
    """Start-up: the data dir 0700, its secret key, database file and mail dir private.

    ``secret`` is the SECRET_KEY setting: the lazy one is created here, on first
    start-up, rather than by some request. ``sqlite_file``/``mail_dir``: None when
    the database is not SQLite, or mail is not written to files.
    """
    private_data_dir(data_dir)
    str(secret)  # the generated key: made now, if this is the first start
    if sqlite_file is not None:
        private_sqlite(sqlite_file)  # 0600, and so its -wal and -shm
    if mail_dir is not None:
        private_dir(mail_dir)  # reset links: 0700 (new files 0600: the umask)
