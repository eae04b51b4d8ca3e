"""Finding and downloading dataset files: the user's data folder first, then the download cache, then the official URL.

Downloads are checked (SHA-256, or MD5 where upstream publishes only MD5), written atomically (a temporary
file renamed into place only once complete and verified), and fail with a message saying what went wrong
and, offline, exactly which files to put in which folder. There is never a fallback to other data.
"""
from __future__ import annotations

import contextlib
import contextvars
import hashlib
import http.client
import os
import sys
import tempfile
import urllib.error
import urllib.parse
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterable, Iterator

from .. import settings

DATA_DIR_ENV = "FCLAB_DATA_DIR"
OFFLINE_ENV = "FCLAB_OFFLINE"  # "1": never touch the network (air-gapped machines, tests)
MIRROR_ENV = "FCLAB_DOWNLOAD_MIRROR"  # base URL serving <folder>/<name>, used instead of the official URLs
TIMEOUT_S = 30
CHUNK = 1 << 16

ERR_CHECKSUM = ("checksum mismatch for {name} downloaded from {url}: expected {algo} {expected}, got {got}. "
                "The bad file was deleted; try again, or download it yourself and put it in the data folder.")
ERR_INCOMPLETE = ("the download of {name} from {url} was interrupted after {got} of {total} bytes ({reason}). "
                  "Nothing was saved; try again.")
# How to give the app a data folder: the one line the Train page, this message and README's Set up all say.
HOW_TO_GET_FILES = ("put the files in a folder, exactly as named, and start the app with `FCLAB_DATA_DIR` set to it "
                    "(`FCLAB_DATA_DIR=/path/to/folder make app`); the CLI takes `--data-dir`")
ERR_OFFLINE = ("{dataset}: {count} file(s) are missing on this machine ({reason}).\n"
               "Put them in the data folder {folder}, exactly as named:\n{files}\nTo set the data folder: "
               + HOW_TO_GET_FILES + ".")
ERR_NO_DATA_DIR = "(no data folder is set: choose one first)"
ERR_NO_URL = "it has no public download URL"
REASON_OFFLINE_ENV = f"downloads are switched off ({OFFLINE_ENV}=1)"


def downloads_allowed() -> bool:
    """False when FCLAB_OFFLINE=1: nothing may touch the network."""
    return os.environ.get(OFFLINE_ENV, "").strip() != "1"

ProgressFn = Callable[[int, "int | None"], None]


@dataclass(frozen=True)
class RemoteFile:
    """One file a dataset needs: where it is published and how to check it.

    folder: the sub-folder of the data folder and of the download cache that holds it (e.g. "mnist").
    A file is also accepted directly in the data folder unless its name is shared with another
    dataset's file (shared_name=True, e.g. MNIST and Fashion-MNIST both ship train-images-idx3-ubyte.gz).
    url=None: no public download; the user provides the file.
    system_dirs: folders where a system package installs the file (e.g. Debian's /usr/share/datasets/…),
    searched after the data folder.
    """

    name: str
    url: str | None
    folder: str = ""
    sha256: str | None = None
    md5: str | None = None
    size: int | None = None
    shared_name: bool = False
    system_dirs: tuple[str, ...] = ()

    @property
    def relpath(self) -> str:
        return f"{self.folder}/{self.name}" if self.folder else self.name

    def candidates(self, data_dir: Path | None) -> list[Path]:
        """Where the file may already be, in order: data folder, system folders, download cache."""
        out = []
        if data_dir is not None:
            out.append(Path(data_dir) / self.relpath)
            if self.folder and not self.shared_name:
                out.append(Path(data_dir) / self.name)
        out += [Path(d) / self.name for d in self.system_dirs]
        out.append(settings.download_cache_dir() / self.relpath)
        return out


class DownloadError(RuntimeError):
    """A dataset file could not be obtained; the message says what to do."""


class ChecksumMismatch(DownloadError):
    pass


class IncompleteDownload(DownloadError):
    pass


class DataUnavailable(DownloadError):
    """Offline (or the source is unreachable): the message lists the files to provide by hand."""


def resolve_data_dir(data_dir: str | Path | None) -> Path | None:
    """data_dir if given, else $FCLAB_DATA_DIR, else None."""
    if data_dir:
        return Path(data_dir).expanduser()
    value = os.environ.get(DATA_DIR_ENV, "").strip()
    return Path(value).expanduser() if value else None


def find_file(file: RemoteFile, data_dir: str | Path | None = None) -> Path | None:
    """The first local copy of file (data folder, system folders, cache), or None."""
    for path in file.candidates(resolve_data_dir(data_dir)):
        if path.is_file():
            return path
    return None


def text_progress(done: int, total: int | None) -> None:
    """Default progress report: a one-line text bar on stderr."""
    if total:
        width = 30
        filled = int(width * done / total)
        line = f"\r[{'#' * filled}{'.' * (width - filled)}] {done / 1e6:7.1f} / {total / 1e6:.1f} MB"
    else:
        line = f"\r{done / 1e6:7.1f} MB"
    sys.stderr.write(line + ("\n" if total and done >= total else ""))
    sys.stderr.flush()


_progress: contextvars.ContextVar[ProgressFn | None] = contextvars.ContextVar("fclab_download_progress", default=None)


@contextlib.contextmanager
def reporting(progress: ProgressFn) -> Iterator[None]:
    """Route the progress of downloads started inside this block (e.g. by load_dataset) to progress."""
    token = _progress.set(progress)
    try:
        yield
    finally:
        _progress.reset(token)


def _digests(file: RemoteFile) -> list[tuple[str, str]]:
    return [(algo, value.lower()) for algo, value in (("sha256", file.sha256), ("md5", file.md5)) if value]


def file_digest(path: Path, algo: str = "sha256") -> str:
    h = hashlib.new(algo)
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def source_url(file: RemoteFile) -> str | None:
    """The URL to fetch from: the mirror ($FCLAB_DOWNLOAD_MIRROR/<folder>/<name>) when set, else the official one."""
    mirror = os.environ.get(MIRROR_ENV, "").strip().rstrip("/")
    if mirror:
        return f"{mirror}/{urllib.parse.quote(file.relpath)}"
    return file.url


def _stream(url: str, out, hashers: dict, progress: ProgressFn, timeout: float, size: int | None) -> tuple[int, int | None]:
    """Copy the body at url into out, hashing and reporting progress; returns (bytes read, announced length)."""
    request = urllib.request.Request(url, headers={"User-Agent": "fair-clustering-lab"})
    with urllib.request.urlopen(request, timeout=timeout) as response:
        length = response.headers.get("Content-Length")
        total = int(length) if length and length.isdigit() else size
        done = 0
        progress(0, total)
        try:
            while chunk := response.read(CHUNK):
                out.write(chunk)
                for h in hashers.values():
                    h.update(chunk)
                done += len(chunk)
                progress(done, total)
        except (http.client.IncompleteRead, ConnectionError, TimeoutError) as exc:
            raise _Interrupted(done, total, type(exc).__name__) from None
    return done, total


class _Interrupted(Exception):
    def __init__(self, done: int, total: int | None, reason: str):
        super().__init__(reason)
        self.done, self.total, self.reason = done, total, reason


def download(file: RemoteFile, progress: ProgressFn | None = None, timeout: float = TIMEOUT_S) -> Path:
    """Download file into the cache (atomically, checked) and return its path.

    Raises ChecksumMismatch, IncompleteDownload, or DataUnavailable (network unreachable, HTTP error).
    """
    url = source_url(file)
    if url is None:
        raise DataUnavailable(ERR_NO_URL)
    if not downloads_allowed():
        raise DataUnavailable(REASON_OFFLINE_ENV)
    progress = progress or _progress.get() or text_progress
    dest = settings.download_cache_dir() / file.relpath
    dest.parent.mkdir(parents=True, exist_ok=True)
    hashers = {algo: hashlib.new(algo) for algo, _ in _digests(file)}
    # Same folder as the destination, so the final rename is atomic; the name marks it as unfinished.
    fd, tmp_name = tempfile.mkstemp(prefix=f".{file.name}.", suffix=".part", dir=dest.parent)
    tmp = Path(tmp_name)
    try:
        with os.fdopen(fd, "wb") as out:
            try:
                done, total = _stream(url, out, hashers, progress, timeout, file.size)
            except _Interrupted as exc:
                raise IncompleteDownload(ERR_INCOMPLETE.format(
                    name=file.name, url=url, got=exc.done, total=exc.total or "?", reason=exc.reason)) from None
            except urllib.error.HTTPError as exc:
                raise DataUnavailable(f"HTTP {exc.code} {exc.reason} from {url}") from None
            except urllib.error.URLError as exc:
                raise DataUnavailable(f"cannot reach {url}: {exc.reason}") from None
            except (http.client.HTTPException, ConnectionError, TimeoutError) as exc:
                raise DataUnavailable(f"no answer from {url}: {type(exc).__name__}") from None
            out.flush()
            os.fsync(out.fileno())
        # urllib returns a short body without an error when the server closes early: compare with the length.
        if total is not None and done != total:
            raise IncompleteDownload(ERR_INCOMPLETE.format(
                name=file.name, url=url, got=done, total=total, reason="connection closed early"))
        for algo, expected in _digests(file):
            got = hashers[algo].hexdigest()
            if got != expected:
                raise ChecksumMismatch(ERR_CHECKSUM.format(name=file.name, url=url, algo=algo.upper(),
                                                           expected=expected, got=got))
        os.replace(tmp, dest)
        return dest
    finally:
        tmp.unlink(missing_ok=True)


def missing_message(dataset: str, files: Iterable[RemoteFile], data_dir: Path | None, reason: str) -> str:
    """The offline message: which files to put where, with where each is published."""
    files = list(files)
    data_dir = resolve_data_dir(data_dir)
    folder = str(data_dir) if data_dir else ERR_NO_DATA_DIR
    lines = "\n".join(f"  {f.relpath}    ({'from ' + f.url if f.url else 'no public download: provide it yourself'})"
                      for f in files)
    return ERR_OFFLINE.format(dataset=dataset, count=len(files), reason=reason, folder=folder, files=lines)


def fetch_all(dataset: str, files: Iterable[RemoteFile], data_dir: str | Path | None = None,
              progress: ProgressFn | None = None) -> dict[str, Path]:
    """Local paths of all files (by name), downloading the missing ones; DataUnavailable lists every missing file."""
    files = list(files)
    data_dir = resolve_data_dir(data_dir)
    found = {f.name: find_file(f, data_dir) for f in files}
    missing = [f for f in files if found[f.name] is None]
    for i, file in enumerate(missing):
        try:
            found[file.name] = download(file, progress)
        except DataUnavailable as exc:
            raise DataUnavailable(missing_message(dataset, missing[i:], data_dir, f"download failed: {exc}")) from None
    return found


def all_local(files: Iterable[RemoteFile], data_dir: str | Path | None = None) -> bool:
    """Whether every file is already on this machine (no network needed)."""
    return all(find_file(f, data_dir) is not None for f in files)
