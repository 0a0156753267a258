"""One process per data directory: the embedded store's lock file (``hudong.db.lock``),
holding the pid of the process that has the store open."""

from __future__ import annotations

import fcntl
import os
from pathlib import Path


class StoreLocked(ValueError):
    """Another process has the data directory's store open."""


def lock(path: Path) -> int:
    """Lock ``<path>.lock`` for this process, or raise StoreLocked naming the holder."""
    lock_path = path.with_name(path.name + ".lock")
    fd = os.open(lock_path, os.O_RDWR | os.O_CREAT, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        holder = os.read(fd, 64).decode(errors="replace").strip() or "another process"
        os.close(fd)
        raise StoreLocked(
            f"{path} is in use by process {holder}; stop that hudong serve, or give this "
            "one another --data-dir"
        ) from None
    os.ftruncate(fd, 0)
    os.write(fd, str(os.getpid()).encode())
    return fd
