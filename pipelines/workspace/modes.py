"""File modes: what Pathlink writes is private to its owner unless it is meant for evaluators.

Every `pathlink` command (and every run of the monthly flow, however started) works under a
umask of 077, so each file and folder it creates is 0600 / 0700. Only the evaluators' release
is opened up, explicitly: `published/` 0755 and its files 0644, and the workspace root 0711 so
evaluators can reach `published/` without listing the rest. `landing/` holds raw PII: 0700, or
0750 with `[workspace] landing_group` (e.g. an analysts' group that reads drops too).
"""

from __future__ import annotations

import contextlib
import grp
import os
import stat
from collections.abc import Iterator
from pathlib import Path
from typing import IO, Any

PRIVATE_UMASK = 0o077
PRIVATE_FILE = 0o600
PRIVATE_DIR = 0o700
EVALUATOR_FILE = 0o644
EVALUATOR_DIR = 0o755
ROOT_DIR = 0o711  # traverse only: evaluators reach published/, cannot list the workspace
LANDING_DIR = 0o700
LANDING_GROUP_DIR = 0o750


def set_private_umask() -> int:
    """Set the process umask to 077 and return the previous one."""
    return os.umask(PRIVATE_UMASK)


@contextlib.contextmanager
def private_umask() -> Iterator[None]:
    """Run a block under umask 077, restoring the previous umask afterwards."""
    previous = os.umask(PRIVATE_UMASK)
    try:
        yield
    finally:
        os.umask(previous)


def chmod_if(path: Path, mode: int) -> bool:
    """Set `path`'s permission bits to `mode` (never following a link); True when changed."""
    try:
        st = os.lstat(path)
    except FileNotFoundError:
        return False
    if stat.S_ISLNK(st.st_mode) or stat.S_IMODE(st.st_mode) == mode:
        return False
    os.chmod(path, mode)
    return True


def for_evaluators(path: Path) -> None:
    """Open a file (0644) or folder (0755) the evaluators are meant to read."""
    chmod_if(path, EVALUATOR_DIR if path.is_dir() else EVALUATOR_FILE)


def open_private(path: Path, mode: str = "w", **kwargs: object) -> IO[Any]:
    """Open `path` for writing, created (or truncated) with mode 0600, whatever the umask; an
    existing file is set to 0600 too. Refuses to follow a symbolic link at `path`."""
    flags = os.O_WRONLY | os.O_CREAT | os.O_TRUNC | getattr(os, "O_NOFOLLOW", 0)
    fd = os.open(path, flags, PRIVATE_FILE)
    try:
        os.fchmod(fd, PRIVATE_FILE)
    except BaseException:
        os.close(fd)
        raise
    return os.fdopen(fd, mode, **kwargs)  # type: ignore[arg-type]


def group_id(name: str) -> int:
    """The id of a group by name (KeyError when there is none)."""
    return grp.getgrnam(name).gr_gid


def secure_landing(landing: Path, group: str | None = None) -> list[Path]:
    """`landing/` and its partner folders 0700, or 0750 owned by `group`; returns what changed.

    Files below are the partners' own and left as they are: the folder's mode already keeps
    everyone else out.
    """
    changed: list[Path] = []
    if not landing.is_dir() or landing.is_symlink():
        return changed
    mode = LANDING_GROUP_DIR if group else LANDING_DIR
    gid = group_id(group) if group else None
    folders = [landing, *sorted(p for p in landing.iterdir()
                                if p.is_dir() and not p.is_symlink())]
    for folder in folders:
        if gid is not None and os.lstat(folder).st_gid != gid:
            os.chown(folder, -1, gid)
            changed.append(folder)
        if chmod_if(folder, mode) and folder not in changed:
            changed.append(folder)
    return changed


def tighten_tree(folder: Path) -> list[Path]:
    """Every folder below (and including) `folder` 0700 and every file 0600; links untouched.
    Returns what changed (a workspace made before modes were enforced)."""
    changed: list[Path] = []
    if not folder.is_dir() or folder.is_symlink():
        return changed
    if chmod_if(folder, PRIVATE_DIR):
        changed.append(folder)
    for base, dirs, files in os.walk(folder, followlinks=False):
        for name in dirs:
            if chmod_if(Path(base) / name, PRIVATE_DIR):
                changed.append(Path(base) / name)
        for name in files:
            if chmod_if(Path(base) / name, PRIVATE_FILE):
                changed.append(Path(base) / name)
    return changed


def open_release(published: Path) -> list[Path]:
    """`published/` 0755 and its files 0644 (hidden temporary files stay private)."""
    changed: list[Path] = []
    if not published.is_dir() or published.is_symlink():
        return changed
    if chmod_if(published, EVALUATOR_DIR):
        changed.append(published)
    for path in sorted(published.iterdir()):
        if path.name.startswith(".") or path.is_symlink():
            continue
        if chmod_if(path, EVALUATOR_DIR if path.is_dir() else EVALUATOR_FILE):
            changed.append(path)
    return changed


__all__ = [
    "EVALUATOR_DIR", "EVALUATOR_FILE", "LANDING_DIR", "LANDING_GROUP_DIR", "PRIVATE_DIR",
    "PRIVATE_FILE", "PRIVATE_UMASK", "ROOT_DIR", "chmod_if", "for_evaluators", "group_id",
    "open_private", "open_release", "private_umask", "secure_landing", "set_private_umask",
    "tighten_tree",
]
