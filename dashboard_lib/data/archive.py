"""Read members of a zip, a tar(.gz) or an already extracted folder the same way, without unpacking to disk."""
from __future__ import annotations

import tarfile
import zipfile
from pathlib import Path
from typing import Iterable, Iterator

ERR_NOT_ARCHIVE = "{path}: not a zip or tar archive, nor a folder"
ERR_NO_MEMBER = "{path} has no file ending in '{suffix}'; is it the original archive?"


class Archive:
    """Members by relative POSIX path; read_many yields in storage order so a .tar.gz is read in one pass."""

    def __init__(self, path: Path):
        self.path = Path(path)
        if self.path.is_dir():
            self.kind = "dir"
            self._names = sorted(p.relative_to(self.path).as_posix() for p in self.path.rglob("*") if p.is_file())
        elif zipfile.is_zipfile(self.path):
            self.kind = "zip"
            with zipfile.ZipFile(self.path) as zf:
                self._names = [i.filename for i in zf.infolist() if not i.is_dir()]
        elif tarfile.is_tarfile(self.path):
            self.kind = "tar"
            with tarfile.open(self.path) as tf:
                self._names = [m.name for m in tf.getmembers() if m.isfile()]
        else:
            raise ValueError(ERR_NOT_ARCHIVE.format(path=self.path))

    @property
    def names(self) -> list[str]:
        return list(self._names)

    def find(self, suffix: str) -> str:
        """The first member whose path ends with suffix (archives differ in their top folder)."""
        for name in self._names:
            if name == suffix or name.endswith("/" + suffix):
                return name
        raise ValueError(ERR_NO_MEMBER.format(path=self.path, suffix=suffix))

    def read(self, name: str) -> bytes:
        return next(iter(self.read_many([name])))[1]

    def read_many(self, names: Iterable[str]) -> Iterator[tuple[str, bytes]]:
        """(name, bytes) for each requested member, in the archive's order."""
        wanted = set(names)
        if self.kind == "dir":
            for name in sorted(wanted):
                yield name, (self.path / name).read_bytes()
        elif self.kind == "zip":
            with zipfile.ZipFile(self.path) as zf:
                for name in sorted(wanted):
                    yield name, zf.read(name)
        else:
            with tarfile.open(self.path) as tf:
                for member in tf:
                    if member.name in wanted:
                        yield member.name, tf.extractfile(member).read()
