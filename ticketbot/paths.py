"""Where templates and migrations live: in the wheel, or beside the package in a checkout."""

import os
from pathlib import Path

_PACKAGE = Path(__file__).resolve().parent


def _data_dir(name: str) -> Path:
    installed = _PACKAGE / "_data" / name
    if installed.is_dir():
        return installed
    return _PACKAGE.parent / name


TEMPLATES_DIR = _data_dir("templates")
MIGRATIONS_DIR = _data_dir("migrations")


def private_file(path: Path, *, new: bool = False) -> Path:
    """Make `path` a file only its owner can read (0600), whatever the umask: created
    empty if missing (SQLite gives its -wal and -shm files the database's mode)."""
    flags = os.O_WRONLY | os.O_CREAT | (os.O_EXCL if new else 0)
    os.close(os.open(path, flags, 0o600))
    os.chmod(path, 0o600)
    return path


def write_private(path: Path, data: bytes) -> None:
    """Write a whole file, owner-only (exports, reports, demo output)."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as out:
        out.write(data)
    os.chmod(path, 0o600)
