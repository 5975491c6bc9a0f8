"""Every file revoke writes goes through `write_private`: reports and their signed statements,
exports, sweep outputs, the demo's report.

These files map where credentials live, and revoke often runs as a privileged user in a shared
directory (a CI workspace, /tmp), where someone else may have planted `report.md ->
/etc/something` beforehand. So a write never follows a symbolic link: a target that is one is
refused (exit 2, one line), and the data goes to a fresh temporary file in the target's own
directory (created 0600, exclusively, never through a link) that is then renamed over the
target. A rename replaces the directory entry itself, so even a link planted between the check
and the rename is replaced, never followed, and a reader sees the old file or the new one, never
half of one. A hard link to the old file keeps the old content.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
from pathlib import Path

from revoke.errors import InputError


def refuse_symlink(path: str | Path, what: str = "output") -> None:
    """Exit 2 if `path` is a symbolic link (dangling or not): checked before anything is written."""
    if Path(path).is_symlink():
        raise InputError(f"the {what} path is a symbolic link; revoke never writes through one "
                         "(remove the link or choose another path)", source=str(path))


def write_private(path: str | Path, data: bytes, *, what: str = "output") -> None:
    """Write `data` to `path`, readable by its owner only (0600), atomically, never through a link.
    Missing parent folders are made; any failure is an input error naming the file."""
    target = Path(path)
    refuse_symlink(target, what)
    tmp: str | None = None
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.", suffix=".tmp")  # O_EXCL, 0600
        try:
            _write_all(fd, data)
            os.fsync(fd)
        finally:
            os.close(fd)
        os.replace(tmp, target)
        tmp = None
        _fsync_dir(target.parent)
    except OSError as exc:
        raise InputError(f"cannot write the {what}: {exc.strerror or exc}", source=str(path)) from None
    finally:
        if tmp is not None:
            with contextlib.suppress(OSError):
                os.unlink(tmp)


def _write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)  # os.write may write less than asked
    while view:
        view = view[os.write(fd, view):]


def _fsync_dir(directory: Path) -> None:
    # the rename itself must survive a crash, not only the file's bytes
    with contextlib.suppress(OSError):
        fd = os.open(directory, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)
