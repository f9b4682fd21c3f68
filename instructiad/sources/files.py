"""File-system helpers shared by the source readers."""

from __future__ import annotations

import os
from pathlib import Path, PurePosixPath

from instructiad.errors import BadFileError, InstructIADError, shown

IMAGE_SUFFIXES = frozenset({".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff"})
SPLITS = ("train", "validation", "test")
"""Split order used everywhere: readers yield, builders write and cards list in this order."""


def check_root(root: str | Path) -> Path:
    """Return ``root`` as an absolute path, or raise if it is missing or unreadable."""
    path = Path(root).expanduser().absolute()
    if not path.exists():
        raise InstructIADError(f"{path}: source root does not exist")
    if not path.is_dir():
        raise InstructIADError(f"{path}: source root is not a folder")
    if not os.access(path, os.R_OK | os.X_OK):
        raise InstructIADError(f"{path}: source root is not readable")
    return path


def subfolders(folder: Path) -> list[Path]:
    """Sub-folders of ``folder`` sorted by name (hidden ones left out)."""
    try:
        entries = list(folder.iterdir())
    except OSError as error:
        raise InstructIADError(f"{folder}: cannot list folder ({error.strerror})") from None
    return sorted((p for p in entries if p.is_dir() and not p.name.startswith(".")), key=lambda p: p.name)


def images_in(folder: Path) -> list[Path]:
    """Image files directly in ``folder`` sorted by name (any case of the usual suffixes)."""
    try:
        entries = list(folder.iterdir())
    except OSError as error:
        raise InstructIADError(f"{folder}: cannot list folder ({error.strerror})") from None
    found = (p for p in entries if p.suffix.lower() in IMAGE_SUFFIXES and not p.name.startswith("."))
    return sorted((p for p in found if p.is_file()), key=lambda p: p.name)


def relative(root: Path, path: Path) -> str:
    """``path`` relative to ``root``, in POSIX form."""
    return path.relative_to(root).as_posix()


def is_utf8(path: str | Path) -> bool:
    """Whether ``path`` is valid UTF-8 (records, reports and Parquet files need it)."""
    return shown(path) == os.fspath(path)


def inside(root: Path, path: Path, what: str = "file") -> Path:
    """Return ``path`` if it lies under ``root`` once symlinks are resolved (both sides).

    Raises:
        BadFileError: ``path`` is (or passes through) a symlink that leads out of ``root``.
    """
    if not path.resolve().is_relative_to(root.resolve()):
        raise BadFileError(path, f"{what} is a symlink that leads out of the source root {root}")
    return path


def confined(root: Path, relative_path: str, where: str, what: str = "file") -> str:
    """Check a path read from a split file: it must stay under ``root`` and exist.

    ``..`` parts are allowed as long as the resolved path stays under ``root``.

    Args:
        root: the source root (absolute).
        relative_path: the path as written in the split file (relative to ``root``).
        where: the split file and entry, for the error (e.g. ``"split_csv/1cls.csv:12"``).
        what: what the path names, for the error (``"image"``, ``"mask"``).

    Returns:
        The normalised POSIX path relative to ``root``.

    Raises:
        BadFileError: the path is absolute, escapes ``root`` (also through a symlink), or
            names no file.
    """
    pure = PurePosixPath(relative_path.replace("\\", "/"))
    if pure.is_absolute():
        raise BadFileError(where, f"{what} path {relative_path!r} escapes the source root {root}")
    full = root / pure
    try:
        resolved = full.resolve(strict=True)
    except (OSError, RuntimeError):
        if not (root / os.path.normpath(pure)).resolve().is_relative_to(root.resolve()):
            raise BadFileError(where, f"{what} path {relative_path!r} escapes the source root {root}") from None
        raise BadFileError(where, f"{what} file {relative_path!r} does not exist under {root}") from None
    if not resolved.is_relative_to(root.resolve()):
        via = "" if ".." in pure.parts else " (symlink)"
        raise BadFileError(where, f"{what} path {relative_path!r} escapes the source root {root}{via}")
    if not resolved.is_file():
        raise BadFileError(where, f"{what} path {relative_path!r} is not a file")
    if ".." in pure.parts:  # the file it names, without the detour
        return resolved.relative_to(root.resolve()).as_posix()
    return pure.as_posix()
