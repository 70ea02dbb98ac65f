"""Atomic writes: every output geocryo writes is complete on disk, or was never there.

One protocol serves every writer (cube stores, predictions, models, preprocessing plans,
checkpoints, optimiser states, reports), for a file or a directory alike:

1. the new output is written beside its destination under a staging name,
   ``.<name>.geocryo-writing-<tag>``, and flushed to disk (every file fsynced);
2. the staging name is renamed to ``.<name>.geocryo-ready-<tag>``: from here on the new output
   is known to be complete;
3. an old output at the destination is renamed aside to ``.<name>.geocryo-old-<tag>`` (an old
   file is hard-linked there instead, and stays in place);
4. the ready output is renamed to the destination;
5. the old output is deleted.

Each rename is atomic, so a process killed at any moment leaves the destination either as it
was or complete, plus at most some of those side names. A file destination is never missing (the
rename of step 4 replaces the old file at once); a directory is missing between steps 3 and 4,
until a reader's :func:`restore` (``geocryo.load`` and ``geocryo.open_zarr`` call it), the next
write or :func:`recover` moves the ready one in.

The next write to the same destination (and :func:`recover`, which any caller may run first)
finishes or rolls back what a killed run left: a ready output is moved in (the write had
completed), an old output with no destination is moved back (the write had not), and writing or
old leftovers beside a destination are removed.

Writers that run at the same time on the same destination are not supported: the last one to
finish wins, and one's recovery may remove the other's staging.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import uuid
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path

__all__ = ["AtomicWrite", "atomic_write", "commit_all", "recover", "restore"]

_WRITING, _READY, _OLD = "geocryo-writing", "geocryo-ready", "geocryo-old"


def _side(path: Path, kind: str, tag: str) -> Path:
    return path.with_name(f".{path.name}.{kind}-{tag}")


def _leftovers(path: Path, kind: str) -> list[Path]:
    if not path.parent.is_dir():
        return []
    return sorted(path.parent.glob(f".{_glob_escape(path.name)}.{kind}-*"))


def _glob_escape(name: str) -> str:
    return "".join(f"[{c}]" if c in "*?[" else c for c in name)


def _remove(path: Path) -> None:
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path, ignore_errors=True)
    else:
        path.unlink(missing_ok=True)


def fsync_tree(path: Path) -> None:
    """Flush ``path`` (a file, or a directory with everything in it) to disk."""
    if path.is_dir():
        for root, _, files in os.walk(path):
            for name in files:
                _fsync_file(Path(root) / name)
            _fsync_directory(Path(root))
    else:
        _fsync_file(path)


def _fsync_file(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _fsync_directory(path: Path) -> None:
    """Make renames inside ``path`` durable; a no-op where directories cannot be opened."""
    with contextlib.suppress(OSError):
        _fsync_file(path)


def recover(path: str | os.PathLike) -> None:
    """Finish or roll back what a killed write to ``path`` left beside it.

    - a ready output (the write had completed) replaces ``path``;
    - an old output is moved back if ``path`` is missing (the write had not completed), and
      removed otherwise;
    - staging outputs that never became ready are removed.
    """
    path = Path(path).expanduser().absolute()
    ready = _leftovers(path, _READY)
    old = _leftovers(path, _OLD)
    if ready:
        *stale, newest = sorted(ready, key=lambda p: p.stat().st_mtime)
        for leftover in stale:
            _remove(leftover)
        # a file replaces a file in one rename; a directory needs the old one out of the way
        if (newest.is_dir() or path.is_dir()) and (path.exists() or path.is_symlink()):
            aside = _side(path, _OLD, uuid.uuid4().hex[:8])
            os.replace(path, aside)
            old.append(aside)
        os.replace(newest, path)
    elif old and not (path.exists() or path.is_symlink()):
        *stale, newest = sorted(old, key=lambda p: p.stat().st_mtime)
        os.replace(newest, path)
        old = stale
    for leftover in [*old, *_leftovers(path, _WRITING)]:
        _remove(leftover)
    _fsync_directory(path.parent)


def restore(path: str | os.PathLike) -> bool:
    """For a reader: when nothing is at ``path`` but a killed write left its output beside it,
    put that output in place (the new one if it was complete, else the old one).

    Unlike :func:`recover` it never removes anything, and does nothing while ``path`` exists,
    so it is safe to call while another process may be writing. Returns whether it moved one.
    """
    path = Path(path).expanduser().absolute()
    if path.exists() or path.is_symlink():
        return False
    for kind in (_READY, _OLD):
        found = sorted(_leftovers(path, kind), key=lambda p: p.stat().st_mtime)
        if found:
            with contextlib.suppress(FileNotFoundError):  # a writer got there first
                os.replace(found[-1], path)
            _fsync_directory(path.parent)
            return True
    return False


class AtomicWrite:
    """One atomic write of ``path``: write into :attr:`staging`, then :meth:`commit`.

    Parameters
    ----------
    path
        The destination, a file or a directory.
    overwrite
        Replace an output already at ``path``; without it, an existing ``path`` is an error.
    replaceable
        With ``overwrite``, a test that the existing ``path`` is an output of this kind (a Zarr
        store, a saved model), so that a wrong path never deletes something else.
    what
        Words for the output in errors ("a Zarr store", "a saved model").
    directory
        Whether the output is a directory (created empty as :attr:`staging`) or a file.
    """

    def __init__(
        self,
        path: str | os.PathLike,
        *,
        overwrite: bool = False,
        replaceable: Callable[[Path], bool] | None = None,
        what: str = "an output",
        directory: bool = True,
    ) -> None:
        self.path = Path(path).expanduser().absolute()
        recover(self.path)
        if self.path.exists():
            if not overwrite:
                raise FileExistsError(
                    f"{self.path} already exists; pass overwrite=True to replace it"
                )
            if replaceable is not None and not replaceable(self.path):
                raise FileExistsError(
                    f"{self.path} exists and is not {what}; refusing to replace it. "
                    "Choose another path, or remove it yourself."
                )
        self.tag = uuid.uuid4().hex[:8]
        self.staging = _side(self.path, _WRITING, self.tag)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.directory = directory
        if directory:
            self.staging.mkdir()
        self._ready = _side(self.path, _READY, self.tag)
        self._old = _side(self.path, _OLD, self.tag)
        self.state = "writing"

    def __repr__(self) -> str:
        return f"AtomicWrite({str(self.path)!r}, {self.state})"

    def seal(self) -> None:
        """Flush the staged output to disk and mark it complete (steps 1 and 2)."""
        fsync_tree(self.staging)
        os.replace(self.staging, self._ready)
        _fsync_directory(self.path.parent)
        self.state = "ready"

    def set_aside(self) -> None:
        """Move an old output at the destination aside (step 3).

        An old file is hard-linked aside and left in place, for :meth:`move_in` to replace in
        one rename (renamed aside where the file system has no hard links)."""
        if not self.directory and self.path.is_file() and not self.path.is_symlink():
            try:
                os.link(self.path, self._old)
            except OSError:
                os.replace(self.path, self._old)
        elif self.path.exists() or self.path.is_symlink():
            os.replace(self.path, self._old)
        self.state = "aside"

    def move_in(self) -> None:
        """Move the ready output to the destination (step 4)."""
        os.replace(self._ready, self.path)
        _fsync_directory(self.path.parent)
        self.state = "swapped"

    def swap(self) -> None:
        """Steps 3 and 4."""
        self.set_aside()
        self.move_in()

    def cleanup(self) -> None:
        """Delete the old output (step 5)."""
        _remove(self._old)
        self.state = "committed"

    def commit(self) -> Path:
        """Seal, swap and clean up; returns the destination."""
        self.seal()
        self.swap()
        self.cleanup()
        return self.path

    def abort(self) -> None:
        """Drop the new output: the destination stays as it was, or gets its old output back."""
        if self.state == "swapped":
            os.replace(self.path, self._ready)
        if self._old.exists() or self._old.is_symlink():
            if self.path.exists() or self.path.is_symlink():
                _remove(self._old)  # a link to the old file, which is still in place
            else:
                os.replace(self._old, self.path)
        _remove(self.staging)
        _remove(self._ready)
        self.state = "aborted"


def commit_all(writes: Sequence[AtomicWrite]) -> list[Path]:
    """Commit several writes together: all are sealed before any is swapped in, and a failure
    while swapping puts every destination back as it was."""
    try:
        for write in writes:
            write.seal()
        for write in writes:
            write.swap()
    except BaseException:
        for write in writes:
            write.abort()
        raise
    for write in writes:
        write.cleanup()
    return [write.path for write in writes]


@contextlib.contextmanager
def atomic_write(
    path: str | os.PathLike,
    *,
    overwrite: bool = False,
    replaceable: Callable[[Path], bool] | None = None,
    what: str = "an output",
    directory: bool = True,
) -> Iterator[Path]:
    """Write ``path`` atomically: the body writes to the staging path yielded; on success it is
    committed, on an exception dropped (and the exception raised).

    >>> with atomic_write("runs/model", overwrite=True) as staging:
    ...     (staging / "model.json").write_text("{}")

    Parameters are those of :class:`AtomicWrite`.
    """
    write = AtomicWrite(
        path, overwrite=overwrite, replaceable=replaceable, what=what, directory=directory
    )
    try:
        yield write.staging
    except BaseException:
        write.abort()
        raise
    try:
        write.commit()
    except BaseException:
        write.abort()
        raise
