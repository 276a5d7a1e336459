"""Reading files a user or a scenario names, safely: regular files only (a FIFO or a device
is refused instead of blocking), within a size limit checked on the open file, and for files
inside a folder, opened once by walking from the folder's descriptor without following any
symbolic link, so what was checked is what is read (no check-then-open race)."""
from __future__ import annotations

import errno
import os
import stat
from pathlib import Path

_FLAGS = os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_CLOEXEC", 0)
_NOFOLLOW = getattr(os, "O_NOFOLLOW", 0)
_DIRECTORY = getattr(os, "O_DIRECTORY", 0)


class UnsafeFile(ValueError):
    """A file that is not read: not a regular file, a symbolic link, too large, missing."""


def _read_fd(fd: int, shown: str, limit: int) -> bytes:
    info = os.fstat(fd)
    if not stat.S_ISREG(info.st_mode):
        kind = "a folder" if stat.S_ISDIR(info.st_mode) else "a FIFO" if stat.S_ISFIFO(info.st_mode) else \
            "not a regular file"
        raise UnsafeFile(f"{shown} is {kind}; only regular files are read")
    if info.st_size > limit:
        raise UnsafeFile(f"{shown} is {info.st_size / 2**20:.1f} MiB, over the limit of {limit / 2**20:g} MiB")
    chunks, total = [], 0
    while True:
        chunk = os.read(fd, 1 << 20)
        if not chunk:
            break
        total += len(chunk)
        if total > limit:  # grew while being read
            raise UnsafeFile(f"{shown} is over the limit of {limit / 2**20:g} MiB")
        chunks.append(chunk)
    return b"".join(chunks)


def _open_error(exc: OSError, shown: str) -> UnsafeFile:
    if exc.errno == errno.ELOOP:
        return UnsafeFile(f"{shown} is a symbolic link, which is not followed")
    if exc.errno == errno.ENOTDIR:
        return UnsafeFile(f"{shown}: a part of the path is a symbolic link or not a folder")
    if exc.errno == errno.ENOENT:
        return UnsafeFile(f"{shown} does not exist")
    return UnsafeFile(f"{shown}: cannot read ({exc.strerror})")


def read_regular(path: str | Path, limit: int) -> bytes:
    """The bytes of a regular file the user named (links to it allowed), within `limit`."""
    shown = str(path)
    try:
        fd = os.open(path, _FLAGS)
    except OSError as exc:
        raise _open_error(exc, shown) from None
    try:
        return _read_fd(fd, shown, limit)
    finally:
        os.close(fd)


def open_under(folder: str | Path, relative: str | Path) -> int:
    """A descriptor of the regular file `relative` inside `folder`, opened component by
    component from the folder's descriptor with O_NOFOLLOW: a symbolic link anywhere below the
    folder is refused, and so is a folder swapped for a link after any earlier check."""
    parts = [p for p in Path(relative).parts if p not in ("", ".")]
    shown = str(Path(folder) / relative)
    if not parts or ".." in parts or Path(relative).is_absolute():
        raise UnsafeFile(f"{shown}: not a path inside {folder}")
    try:
        fd = os.open(folder, os.O_RDONLY | _DIRECTORY | getattr(os, "O_CLOEXEC", 0))
    except OSError as exc:
        raise _open_error(exc, str(folder)) from None
    try:
        for part in parts[:-1]:
            try:
                nxt = os.open(part, os.O_RDONLY | _DIRECTORY | _NOFOLLOW, dir_fd=fd)
            except OSError as exc:
                raise _open_error(exc, shown) from None
            os.close(fd)
            fd = nxt
        try:
            leaf = os.open(parts[-1], _FLAGS | _NOFOLLOW, dir_fd=fd)
        except OSError as exc:
            raise _open_error(exc, shown) from None
    finally:
        os.close(fd)
    if not stat.S_ISREG(os.fstat(leaf).st_mode):
        os.close(leaf)
        raise UnsafeFile(f"{shown} is not a regular file; only regular files are read")
    return leaf


def read_under(folder: str | Path, relative: str | Path, limit: int) -> bytes:
    """The bytes of the regular file `relative` inside `folder` (see `open_under`)."""
    fd = open_under(folder, relative)
    try:
        return _read_fd(fd, str(Path(folder) / relative), limit)
    finally:
        os.close(fd)


def write_file(path: Path | str, data: bytes, shown: str | None = None) -> None:
    """Write `data` to the regular file `path` (made if missing). A FIFO, a device or a folder there
    is refused by name rather than written to: writing to a FIFO no one reads blocks for ever."""
    path = Path(path)
    shown = shown or str(path)
    try:
        info = os.stat(path)
    except FileNotFoundError:
        info = None
    except OSError as exc:
        raise UnsafeFile(f"{shown}: cannot write: {exc.strerror}") from None
    if info is not None and not stat.S_ISREG(info.st_mode):
        raise UnsafeFile(f"{shown} is {_kind(info.st_mode)}; only a regular file is written")
    try:  # O_NONBLOCK: a FIFO put there since the check is not waited on
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_NONBLOCK, 0o644)
    except OSError as exc:
        raise UnsafeFile(f"{shown}: cannot write: {exc.strerror}") from None
    try:
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode):
            raise UnsafeFile(f"{shown} is {_kind(info.st_mode)}; only a regular file is written")
        os.ftruncate(fd, 0)
        os.set_blocking(fd, True)
        view = memoryview(data)
        while view:
            view = view[os.write(fd, view):]
    except OSError as exc:
        raise UnsafeFile(f"{shown}: cannot write: {exc.strerror}") from None
    finally:
        os.close(fd)


def _kind(mode: int) -> str:
    return ("a folder" if stat.S_ISDIR(mode) else "a FIFO" if stat.S_ISFIFO(mode)
            else "a device" if stat.S_ISCHR(mode) or stat.S_ISBLK(mode) else "not a regular file")
