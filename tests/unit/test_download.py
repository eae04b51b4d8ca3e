"""The download utility against a real HTTP server on 127.0.0.1: success, checksum, interruption, cache, data folder, offline."""
from __future__ import annotations

import hashlib
import io
import socket
import threading
import zipfile
from collections import Counter
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import numpy as np
import pytest

from dashboard_lib.data import download as dl
from dashboard_lib.data import har, load_dataset


class Server:
    """Serves bytes by path; /truncated/<path> announces the full length but sends half, then hangs up."""

    def __init__(self):
        self.files: dict[str, bytes] = {}
        self.hits: Counter = Counter()
        server = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self):
                server.hits[self.path] += 1
                truncated = self.path.startswith("/truncated/")
                body = server.files.get(self.path.removeprefix("/truncated") if truncated else self.path)
                if body is None:
                    self.send_error(404)
                    return
                self.send_response(200)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body[: len(body) // 2] if truncated else body)
                self.wfile.flush()
                self.close_connection = True

            def log_message(self, *args):
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}"
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)
        self.thread.start()

    def add(self, path: str, body: bytes) -> str:
        self.files[path] = body
        return self.url + path


@pytest.fixture(scope="module")
def server():
    s = Server()
    yield s
    s.httpd.shutdown()
    s.httpd.server_close()


@pytest.fixture(autouse=True)
def home(fclab_home, monkeypatch):
    monkeypatch.delenv("FCLAB_OFFLINE", raising=False)
    monkeypatch.delenv("FCLAB_DATA_DIR", raising=False)
    monkeypatch.delenv("FCLAB_DOWNLOAD_MIRROR", raising=False)
    return fclab_home


def remote(server: Server, name: str, body: bytes, **kw) -> dl.RemoteFile:
    url = server.add(f"/{name}", body)
    return dl.RemoteFile(name, url, "things", sha256=hashlib.sha256(body).hexdigest(), **kw)


def cache_files(home) -> list[str]:
    root = home / "downloads"
    return sorted(p.relative_to(root).as_posix() for p in root.rglob("*") if p.is_file()) if root.exists() else []


BODY = bytes(range(256)) * 1000  # 256 kB: several chunks


def test_download_success_reports_progress_and_caches(server, home):
    file = remote(server, "ok.bin", BODY)
    calls = []
    path = dl.fetch_all("test", [file], progress=lambda done, total: calls.append((done, total)))["ok.bin"]
    assert path == home / "downloads" / "things" / "ok.bin"
    assert path.read_bytes() == BODY
    assert calls[0] == (0, len(BODY)) and calls[-1] == (len(BODY), len(BODY))
    assert [d for d, _ in calls] == sorted(d for d, _ in calls) and len(calls) > 2
    assert cache_files(home) == ["things/ok.bin"]  # no temporary file left


def test_md5_is_checked_when_upstream_publishes_only_md5(server):
    url = server.add("/md5.bin", BODY)
    ok = dl.RemoteFile("md5.bin", url, "things", md5=hashlib.md5(BODY).hexdigest())
    assert dl.download(ok, progress=lambda *a: None).read_bytes() == BODY
    bad = dl.RemoteFile("md5b.bin", url, "things", md5="0" * 32)
    with pytest.raises(dl.ChecksumMismatch, match="expected MD5"):
        dl.download(bad, progress=lambda *a: None)


def test_checksum_mismatch_names_both_hashes_and_keeps_nothing(server, home):
    url = server.add("/bad.bin", BODY)
    file = dl.RemoteFile("bad.bin", url, "things", sha256="ab" * 32)
    with pytest.raises(dl.ChecksumMismatch) as err:
        dl.fetch_all("test", [file], progress=lambda *a: None)
    got = hashlib.sha256(BODY).hexdigest()
    assert str(err.value) == dl.ERR_CHECKSUM.format(name="bad.bin", url=url, algo="SHA256", expected="ab" * 32, got=got)
    assert cache_files(home) == []


def test_interrupted_download_is_reported_and_not_cached(server, home):
    server.add("/cut.bin", BODY)
    file = dl.RemoteFile("cut.bin", server.url + "/truncated/cut.bin", "things", sha256=hashlib.sha256(BODY).hexdigest())
    with pytest.raises(dl.IncompleteDownload) as err:
        dl.fetch_all("test", [file], progress=lambda *a: None)
    assert f"of {len(BODY)} bytes" in str(err.value) and "cut.bin" in str(err.value)
    assert cache_files(home) == []
    assert dl.find_file(file) is None  # a later call downloads again instead of trusting half a file


def test_second_call_uses_the_cache(server):
    file = remote(server, "once.bin", b"hello" * 100)
    first = dl.fetch_all("test", [file], progress=lambda *a: None)
    second = dl.fetch_all("test", [file], progress=lambda *a: None)
    assert first == second and server.hits["/once.bin"] == 1


def test_data_folder_comes_first(server, tmp_path):
    file = remote(server, "mine.bin", b"from the server")
    data_dir = tmp_path / "data"
    (data_dir / "things").mkdir(parents=True)
    (data_dir / "things" / "mine.bin").write_bytes(b"the user's copy")
    path = dl.fetch_all("test", [file], data_dir)["mine.bin"]
    assert path == data_dir / "things" / "mine.bin" and server.hits["/mine.bin"] == 0
    # Also found directly in the data folder, unless the name is shared between datasets.
    flat = tmp_path / "flat"
    flat.mkdir()
    (flat / "mine.bin").write_bytes(b"flat copy")
    assert dl.find_file(file, flat) == flat / "mine.bin"
    assert dl.find_file(dl.RemoteFile("mine.bin", file.url, "things", shared_name=True), flat) is None


def test_data_folder_from_environment(server, tmp_path, monkeypatch):
    file = remote(server, "env.bin", b"x")
    (tmp_path / "things").mkdir()
    (tmp_path / "things" / "env.bin").write_bytes(b"local")
    monkeypatch.setenv("FCLAB_DATA_DIR", str(tmp_path))
    assert dl.fetch_all("test", [file])["env.bin"] == tmp_path / "things" / "env.bin"


def test_system_folder_is_searched(tmp_path):
    (tmp_path / "sys").mkdir()
    (tmp_path / "sys" / "pkg.bin").write_bytes(b"debian")
    file = dl.RemoteFile("pkg.bin", None, "pkg", system_dirs=(str(tmp_path / "sys"),))
    assert dl.find_file(file, tmp_path / "nothing") == tmp_path / "sys" / "pkg.bin"


def closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_offline_message_says_which_files_go_where(tmp_path):
    files = [dl.RemoteFile("a.zip", f"http://127.0.0.1:{closed_port()}/a.zip", "fam"),
             dl.RemoteFile("b.txt", None, "fam")]
    with pytest.raises(dl.DataUnavailable) as err:
        dl.fetch_all("Family", files, tmp_path, progress=lambda *a: None)
    message = str(err.value)
    assert message.startswith("Family: 2 file(s) are missing on this machine (download failed: cannot reach")
    assert str(tmp_path) in message and "fam/a.zip" in message and "fam/b.txt" in message
    assert "no public download" in message


def test_offline_switch_never_touches_the_network(server, monkeypatch, tmp_path):
    file = remote(server, "never.bin", b"x")
    monkeypatch.setenv("FCLAB_OFFLINE", "1")
    with pytest.raises(dl.DataUnavailable, match="switched off"):
        dl.fetch_all("test", [file], tmp_path)
    assert server.hits["/never.bin"] == 0


def test_http_error_is_reported(server, tmp_path):
    file = dl.RemoteFile("gone.bin", server.url + "/gone.bin", "things")
    with pytest.raises(dl.DataUnavailable, match="HTTP 404"):
        dl.fetch_all("test", [file], tmp_path, progress=lambda *a: None)


def test_no_data_folder_is_said(tmp_path):
    message = dl.missing_message("X", [dl.RemoteFile("x.bin", None)], None, "why")
    assert dl.ERR_NO_DATA_DIR in message


def test_default_progress_is_a_text_bar(server, capsys):
    dl.download(remote(server, "bar.bin", BODY))
    err = capsys.readouterr().err
    assert "#" * 30 in err and "MB" in err


def test_reporting_routes_progress_of_nested_downloads(server):
    file = remote(server, "nested.bin", BODY)
    seen = []
    with dl.reporting(lambda done, total: seen.append(done)):
        dl.fetch_all("test", [file])
    assert seen[-1] == len(BODY)


def har_zip() -> bytes:
    """A tiny file laid out like the UCI HAR zip."""
    rng = np.random.default_rng(0)
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        root = "UCI HAR Dataset/"
        zf.writestr(root + "activity_labels.txt", "1 WALKING\n2 WALKING_UPSTAIRS\n3 WALKING_DOWNSTAIRS\n"
                                                  "4 SITTING\n5 STANDING\n6 LAYING\n")
        for split, n in (("train", 12), ("test", 6)):
            rows = "\n".join(" ".join(f"{v:.6e}" for v in rng.uniform(-1, 1, 561)) for _ in range(n))
            zf.writestr(f"{root}{split}/X_{split}.txt", rows + "\n")
            zf.writestr(f"{root}{split}/y_{split}.txt", "\n".join(str(1 + i % 6) for i in range(n)) + "\n")
            zf.writestr(f"{root}{split}/subject_{split}.txt", "\n".join(str(1 + i % 3 + (3 if split == "test" else 0))
                                                                        for i in range(n)) + "\n")
    return buf.getvalue()


def test_har_downloads_from_a_mirror_then_loads(server, monkeypatch, tmp_path):
    body = har_zip()
    server.add("/mirror/har/UCI HAR Dataset.zip".replace(" ", "%20"), body)
    monkeypatch.setenv("FCLAB_DOWNLOAD_MIRROR", server.url + "/mirror")
    assert not har.available(tmp_path)
    data = load_dataset("har", {}, tmp_path)
    assert len(data) == 18 and data.n_features == 561 and data.n_groups == 6
    assert {k: len(v) for k, v in data.splits.items()} == {"train": 12, "test": 6}
    assert har.available(tmp_path)  # now in the download cache
