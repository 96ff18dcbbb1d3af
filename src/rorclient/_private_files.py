"""Files at rest are private: the ROR holds confidential contacts.

Every file rorclient creates with ROR data or state in it — the SQLite store (SQLite gives its WAL and
SHM files the database's mode), bulk-load staging files, downloads and their ``.part`` files, lock files,
health files — is created ``0600``, and the directories it creates for them ``0700``, whatever the umask.
A file of ours found with a looser mode is used, with a warning. Files are created without following a
symbolic link (``O_NOFOLLOW``) and, where a new file is meant, only if absent (``O_EXCL``): a link planted
by another local user cannot redirect a write.
"""

from __future__ import annotations

import contextlib
import logging
import os
import stat
from pathlib import Path

__all__ = ["NOFOLLOW", "create_private", "open_private", "private_directory", "warn_if_shared"]

_log = logging.getLogger("rorclient")

#: ``os.O_NOFOLLOW`` where it exists (0 elsewhere: Windows has no such links to follow by mistake).
NOFOLLOW: int = getattr(os, "O_NOFOLLOW", 0)
_CLOEXEC: int = getattr(os, "O_CLOEXEC", 0)
_BINARY: int = getattr(os, "O_BINARY", 0)
_SHARED = stat.S_IRWXG | stat.S_IRWXO


def private_directory(path: Path) -> None:
    """Create ``path`` and its missing parents, each ``0700``; existing directories are left as they are."""
    missing: list[Path] = []
    current = path
    while not current.exists():
        missing.append(current)
        if current.parent == current:
            break
        current = current.parent
    for directory in reversed(missing):
        with contextlib.suppress(FileExistsError):
            directory.mkdir(mode=0o700)
        with contextlib.suppress(OSError):  # the umask may have taken more than we asked
            os.chmod(directory, 0o700)


def create_private(path: Path) -> int:
    """A new file at ``path``, ``0600``, opened for writing; fails if anything (a link included) is there."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | NOFOLLOW | _CLOEXEC | _BINARY, 0o600)
    _tighten(fd)
    return fd


def open_private(path: Path, flags: int) -> int:
    """``path`` opened with ``flags`` (``os.O_CREAT`` creates it ``0600``) without following a symbolic
    link; refuses anything but a regular file."""
    fd = os.open(path, flags | NOFOLLOW | _CLOEXEC | _BINARY, 0o600)
    try:
        mode = os.fstat(fd).st_mode
        if not stat.S_ISREG(mode):
            raise OSError(f"{path} is not a regular file")
        if flags & (os.O_WRONLY | os.O_RDWR):  # a file we write (perhaps left by an older version)
            _tighten(fd)
    except BaseException:
        os.close(fd)
        raise
    return fd


def warn_if_shared(path: Path, what: str) -> None:
    """Log a warning when other users may access ``path`` (POSIX modes only)."""
    if os.name != "posix":
        return
    try:
        mode = path.stat().st_mode
    except OSError:
        return
    if mode & _SHARED:
        _log.warning(
            "the %s %s is open to other users (mode %04o) and holds confidential ROR data: chmod 600 %s",
            what,
            path,
            stat.S_IMODE(mode),
            path,
        )


def _tighten(fd: int) -> None:
    """Make a file we own ``0600`` (a file created by us under a strict umask already is)."""
    if os.name != "posix":
        return
    with contextlib.suppress(OSError):
        if stat.S_IMODE(os.fstat(fd).st_mode) & _SHARED and os.fstat(fd).st_uid == os.getuid():
            os.fchmod(fd, 0o600)
