"""Where templates and migrations live: in the wheel, or beside the package in a checkout."""

import contextlib
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


# A file the bot writes for a person (a backup, an export, a report) is new: never an
# existing file, never through a symbolic link planted at its path (SPEC §5).
NEW_FILE = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW


def private_file(path: Path, *, new: bool = False) -> Path:
    """Make `path` a file only its owner can read (0600), whatever the umask: created
    empty if missing (SQLite gives its -wal and -shm files the database's mode). `new`:
    it must not exist yet (FileExistsError, a link included)."""
    flags = NEW_FILE if new else os.O_WRONLY | os.O_CREAT
    fd = os.open(path, flags, 0o600)
    try:
        os.fchmod(fd, 0o600)
    finally:
        os.close(fd)
    return path


def write_private(path: Path, data: bytes, *, replace: bool = False) -> None:
    """Write a whole new file, owner-only (exports, reports, demo output). It must not
    exist (FileExistsError); with `replace` (the demo's own output) an old one, or a link
    in its place, is removed first, never written through."""
    if replace:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(path)
    fd = os.open(path, NEW_FILE, 0o600)
    with os.fdopen(fd, "wb") as out:
        os.fchmod(out.fileno(), 0o600)
        out.write(data)


def unwritable(path: Path) -> str | None:
    """Why a new file cannot be written at `path`, in one line; None when it can."""
    if os.path.lexists(path):
        what = "is a symbolic link" if path.is_symlink() else "already exists"
        return f"{path} {what}; choose a new file name"
    parent = path.parent
    if not parent.is_dir():
        return f"directory {parent} does not exist"
    if not os.access(parent, os.W_OK | os.X_OK):
        return f"directory {parent} is not writable"
    return None


def unusable_directory(path: Path) -> str | None:
    """Why files cannot be written into the directory `path` (made if missing, when its
    parent is there), in one line; None when they can."""
    if path.is_symlink() or (path.exists() and not path.is_dir()):
        return f"{path} is not a directory; name a directory"
    if not path.exists():
        return unwritable(path)
    if not os.access(path, os.W_OK | os.X_OK):
        return f"directory {path} is not writable"
    return None
