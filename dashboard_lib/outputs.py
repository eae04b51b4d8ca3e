"""Files the user names as outputs: checked before any work is done, then written atomically.

An auditor's files are never destroyed without being asked: every output is a path the user named (or a file inside a
folder they named); a path that already exists is refused unless the user forces it; an output that is one of the
inputs is refused always, even forced; two outputs naming one file are refused; and a write goes to a temporary file
beside the target, renamed over it only once complete, so a failure leaves the old file (or none) and no stray
temporary file. One helper for every CLI verb that writes: `check_outputs` first, `write_atomic` at the end.

Every problem raises OutputError (a ValueError) with one of the ERR_* messages, naming the flag and the path.
Knows nothing of Streamlit.
"""
from __future__ import annotations

import os
import secrets
import stat
from collections.abc import Callable
from pathlib import Path
from typing import BinaryIO

ERR_EXISTS = "{flag} {path} already exists: name another file, or add --force to replace it"
ERR_IS_INPUT = "{flag} {path} is the input {role} ({input}): an output never replaces an input, name another file"
ERR_INSIDE_STORE = "{flag} {path} is inside the run store ({store}): name a file outside it"
ERR_TWICE = "{flag} and {other} both name {path}: give each output its own file"
ERR_IS_FOLDER = "{flag} {path} is a folder: name a file (e.g. {example})"
ERR_NOT_A_FILE = "{flag} {path} is not a regular file (a device, pipe or socket): name a file"
ERR_PARENT_NOT_FOLDER = "{flag} {path}: {parent} is a file, not a folder"
ERR_NOT_WRITABLE = "{flag} {path}: the folder {parent} is not writable"
ERR_OUT_DIR_FILE = "--out-dir {path} is a file, not a folder: name a folder (it is created if missing)"
ERR_WRITE = "could not write {flag} {path}: {reason}; nothing was written there"

TEMP_PREFIX = "."  # hidden, and …
TEMP_SUFFIX = ".fclab-tmp"  # … named so a stray one (a killed process) is recognisable as ours


class OutputError(ValueError):
    """An output the user named cannot be written as asked: one line, exit status 2 in the CLI."""


def _identities(path: Path) -> set[tuple]:
    """What makes two paths the same file: the absolute path with every existing link and '..' resolved (as the path
    will resolve once its missing folders are made), and the inode where the file exists (hard links included)."""
    ids = {("path", str(path.expanduser().resolve(strict=False)))}
    try:
        st = os.stat(path)
        ids.add(("inode", st.st_dev, st.st_ino))
    except OSError:
        pass
    return ids


def _existing_ancestor(path: Path) -> Path:
    for parent in path.expanduser().absolute().parents:
        if os.path.lexists(parent):
            return parent
    return Path("/")


def _check_parent(flag: str, path: Path) -> None:
    ancestor = _existing_ancestor(path)
    if not ancestor.is_dir():
        raise OutputError(ERR_PARENT_NOT_FOLDER.format(flag=flag, path=path, parent=ancestor))
    if not os.access(ancestor, os.W_OK | os.X_OK):
        raise OutputError(ERR_NOT_WRITABLE.format(flag=flag, path=path, parent=ancestor))


def check_outputs(outputs: dict[str, str | Path | None], *, inputs: dict[str, str | Path | None] | None = None,
                  force: bool = False, store: str | Path | None = None) -> dict[str, Path]:
    """The named outputs ({flag: path}, None for one not asked for) as Paths, once each is safe to write.

    Refused (OutputError): a folder, or something not a regular file; a path whose folder is a file or is not
    writable; an existing file unless force; an output that is one of the inputs ({role: path}), compared by inode
    and by resolved path, even with force; an output inside the run store's folder (store), even with force; two
    outputs naming one file.
    """
    inputs = {role: Path(p) for role, p in (inputs or {}).items() if p is not None}
    input_ids = {key: (role, p) for role, p in inputs.items() for key in _identities(p)}
    store_root = Path(store).expanduser().resolve(strict=False) if store is not None else None
    chosen: dict[str, Path] = {}
    seen: dict[tuple, str] = {}
    for flag, value in outputs.items():
        if value is None:
            continue
        path = Path(value)
        identities = _identities(path)
        for key in identities & input_ids.keys():
            role, source = input_ids[key]
            raise OutputError(ERR_IS_INPUT.format(flag=flag, path=path, role=role, input=source))
        if store_root is not None and path.expanduser().resolve(strict=False).is_relative_to(store_root):
            raise OutputError(ERR_INSIDE_STORE.format(flag=flag, path=path, store=store_root))
        for key in identities & seen.keys():
            raise OutputError(ERR_TWICE.format(flag=seen[key], other=flag, path=path))
        seen.update(dict.fromkeys(identities, flag))
        if path.is_dir() or str(value).endswith(("/", os.sep)):  # "out/" means a folder even before it exists
            raise OutputError(ERR_IS_FOLDER.format(flag=flag, path=path, example=path / f"out{path_suffix(flag)}"))
        if os.path.lexists(path):
            if path.exists() and not stat.S_ISREG(os.stat(path).st_mode):
                raise OutputError(ERR_NOT_A_FILE.format(flag=flag, path=path))
            if not force:
                raise OutputError(ERR_EXISTS.format(flag=flag, path=path))
        _check_parent(flag, path)
        chosen[flag] = path
    return chosen


def path_suffix(flag: str) -> str:
    """The file type an output flag writes, for the example in a message."""
    return {"--report-json": ".json", "--assignments": ".csv", "--csv": ".csv"}.get(flag, ".html")


def out_dir_outputs(out_dir: str | Path | None, names: dict[str, str]) -> dict[str, Path]:
    """The files --out-dir DIR stands for ({flag: file name inside DIR}); {} without --out-dir. DIR may be missing
    (it is created when written) but must not be a file."""
    if out_dir is None:
        return {}
    folder = Path(out_dir)
    if os.path.lexists(folder) and not folder.is_dir():
        raise OutputError(ERR_OUT_DIR_FILE.format(path=folder))
    return {flag: folder / name for flag, name in names.items()}


def write_atomic(path: str | Path, content: str | bytes | Callable[[BinaryIO], None], *, flag: str = "output",
                 replace: bool = False) -> Path:
    """Write content (text as UTF-8, bytes, or a function that writes to a binary file) to path atomically.

    The bytes go to a temporary file in the same folder (created, with its parents, if missing), flushed to disk, then
    renamed over path: a reader sees the old file or the whole new one, never a part. Without replace, an existing
    path is refused even if it appeared after check_outputs (the rename is a link, which never replaces). Any
    failure removes the temporary file and leaves path as it was; an OSError becomes OutputError.
    """
    path = Path(path)
    tmp = path.parent / f"{TEMP_PREFIX}{path.name}.{secrets.token_hex(4)}{TEMP_SUFFIX}"
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        # O_EXCL: never through a link someone placed at the temporary name; mode 0o666 lets the umask decide, as
        # for any file the user's shell creates.
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_NOFOLLOW", 0), 0o666)
        try:
            with os.fdopen(fd, "wb") as out:
                if callable(content):
                    content(out)
                else:
                    out.write(content.encode("utf-8") if isinstance(content, str) else bytes(content))
                out.flush()
                os.fsync(out.fileno())
            if replace:
                os.replace(tmp, path)
            else:
                _link_no_clobber(tmp, path, flag)
        finally:
            if os.path.lexists(tmp):
                os.unlink(tmp)
    except OSError as exc:
        raise OutputError(ERR_WRITE.format(flag=flag, path=path, reason=exc.strerror or type(exc).__name__)) from None
    return path


def _link_no_clobber(tmp: Path, path: Path, flag: str) -> None:
    try:
        os.link(tmp, path)  # fails if path exists: no window in which another file is replaced
    except FileExistsError:
        raise OutputError(ERR_EXISTS.format(flag=flag, path=path)) from None
    except OSError:  # a file system without hard links: the check in check_outputs has to do
        if os.path.lexists(path):
            raise OutputError(ERR_EXISTS.format(flag=flag, path=path)) from None
        os.replace(tmp, path)
