"""Where templates and migrations live: in the wheel, or beside the package in a checkout."""

from pathlib import Path

_PACKAGE = Path(__file__).resolve().parent


def _data_dir(name: str) -> Path:
    installed = _PACKAGE / "_data" / name
    if installed.is_dir():
        return installed
    return _PACKAGE.parent / name


TEMPLATES_DIR = _data_dir("templates")
MIGRATIONS_DIR = _data_dir("migrations")
