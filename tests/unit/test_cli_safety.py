"""An auditor's files are safe from the CLI: outputs only where named, never over an input, never over an existing file
without --force, written atomically; every mistake one line on stderr and exit status 2 with no run recorded; a file
over the size limit refused before it is read; a failing record leaves no run running."""
import contextlib
import io
import json
import os
import subprocess
import sys
import textwrap

import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from dashboard_lib import outputs
from dashboard_lib.cli import main
from dashboard_lib.data import tables
from dashboard_lib.store import RunStore
from tests.conftest import REPO

AUDIT = ["--clusters", "segment", "--sensitive", "sex", "--resamples", "20"]


def _table(n=120, seed=0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    return pd.DataFrame({"id": [f"r{i}" for i in range(n)], "segment": rng.integers(0, 3, n),
                         "sex": rng.choice(["female", "male"], n), "e0": rng.normal(size=n), "e1": rng.normal(size=n)})


@pytest.fixture
def table(tmp_path):
    path = tmp_path / "T.csv"
    _table().to_csv(path, index=False)
    return path


def one_error_line(capsys) -> str:
    err = capsys.readouterr().err
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].strip() and "Traceback" not in err, err
    return lines[0]


def runs(home):
    return RunStore(home / "store").list_runs()


def no_temp_files(folder) -> bool:
    return not [p for p in folder.rglob("*") if p.name.endswith(outputs.TEMP_SUFFIX)]


# Nothing is written over without being asked -------------------------------------------------------------------------

@pytest.mark.parametrize("flag", ["--report", "--report-json", "--assignments"])
@pytest.mark.parametrize("force", [False, True])
def test_an_output_named_after_the_input_is_refused_and_the_input_unchanged(fclab_home, table, capsys, flag, force):
    before = table.read_bytes()
    assert main(["audit", str(table), *AUDIT, flag, str(table), *["--force"] * force]) == 2
    assert one_error_line(capsys) == (f"error: {flag} {table} is the input table ({table}): an output never replaces an "
                                      "input, name another file")
    assert table.read_bytes() == before and runs(fclab_home) == []


def test_the_input_is_recognised_through_links_and_other_spellings(fclab_home, table, tmp_path, capsys):
    before = table.read_bytes()
    hard, soft = tmp_path / "hard.html", tmp_path / "soft.html"
    os.link(table, hard)
    soft.symlink_to(table)
    embedding = tmp_path / "emb.csv"
    _table()[["e0", "e1"]].to_csv(embedding, index=False)
    for out in (hard, soft, tmp_path / "." / "T.csv", tmp_path / "sub" / ".." / "T.csv"):
        assert main(["audit", str(table), *AUDIT, "--report", str(out), "--force"]) == 2
        assert "is the input table" in one_error_line(capsys)
    assert main(["audit", str(table), *AUDIT, "--embedding-file", str(embedding), "--assignments", str(embedding),
                 "--force"]) == 2
    assert f"--assignments {embedding} is the input --embedding-file" in one_error_line(capsys)
    assert table.read_bytes() == before and runs(fclab_home) == []


def test_report_writes_only_that_file_and_out_dir_the_three(fclab_home, table, tmp_path, capsys):
    out = tmp_path / "T.html"  # the old code wrote T.json and T.csv beside it: T.csv is the input
    before = table.read_bytes()
    assert main(["audit", str(table), *AUDIT, "--report", str(out), "--no-store"]) == 0
    assert sorted(p.name for p in tmp_path.iterdir()) == ["T.csv", "T.html", "fclab_home"]
    assert table.read_bytes() == before and "<html" in out.read_text().lower()
    assert f"report: {out}" in capsys.readouterr().out
    folder = tmp_path / "new" / "audit"
    assert main(["audit", str(table), *AUDIT, "--out-dir", str(folder), "--assignments", str(tmp_path / "a.csv")]) == 0
    assert sorted(p.name for p in folder.iterdir()) == ["audit.html", "audit.json"]
    assert json.loads((folder / "audit.json").read_text())["n"] == 120
    assert pd.read_csv(tmp_path / "a.csv").columns.tolist()[:2] == ["row_id", "cluster"]
    assert no_temp_files(tmp_path)


def test_an_existing_output_is_refused_without_force_and_replaced_with_it(fclab_home, table, tmp_path, capsys):
    out = tmp_path / "out.json"
    out.write_text("keep me")
    assert main(["audit", str(table), *AUDIT, "--report-json", str(out)]) == 2
    assert one_error_line(capsys) == (f"error: --report-json {out} already exists: name another file, or add --force "
                                      "to replace it")
    assert out.read_text() == "keep me" and runs(fclab_home) == []  # refused before any work
    (tmp_path / "d").mkdir()
    (tmp_path / "d" / "audit.html").write_text("old")
    assert main(["audit", str(table), *AUDIT, "--out-dir", str(tmp_path / "d")]) == 2
    assert "--report " + str(tmp_path / "d" / "audit.html") + " already exists" in one_error_line(capsys)
    assert main(["audit", str(table), *AUDIT, "--report-json", str(out), "--force"]) == 0
    assert json.loads(out.read_text())["n"] == 120 and len(runs(fclab_home)) == 1


def test_two_outputs_one_file_a_folder_and_a_bad_out_dir_are_refused(fclab_home, table, tmp_path, capsys):
    same = tmp_path / "x.out"
    cases = [
        (["--report", str(same), "--assignments", str(tmp_path / "." / "x.out")],
         f"error: --report and --assignments both name {tmp_path / 'x.out'}: give each output its own file"),
        (["--report", str(tmp_path)], f"error: --report {tmp_path} is a folder: name a file (e.g. {tmp_path / 'out.html'})"),
        (["--out-dir", str(table)], f"error: --out-dir {table} is a file, not a folder"),
        (["--report", str(table / "r.html")], f"error: --report {table / 'r.html'}: {table} is a file, not a folder"),
        (["--report", "/dev/null", "--force"], "error: --report /dev/null is not a regular file"),
        (["--report", str(tmp_path / "new") + "/"], f"error: --report {tmp_path / 'new'} is a folder"),
        (["--report", str(fclab_home / "store" / "r.html"), "--force"], "error: --report "),
    ]
    for extra, message in cases:
        assert main(["audit", str(table), *AUDIT, *extra]) == 2, extra
        assert one_error_line(capsys).startswith(message), extra
    assert runs(fclab_home) == [] and not same.exists()


def test_an_output_inside_the_run_store_is_refused(fclab_home, table, capsys):
    main(["runs"])  # the store exists
    capsys.readouterr()
    target = fclab_home / "store" / "runs.sqlite"
    assert main(["audit", str(table), *AUDIT, "--report", str(target), "--force"]) == 2
    assert "is inside the run store" in one_error_line(capsys)


def test_sweep_outputs_use_the_same_rules(fclab_home, tmp_path, capsys):
    existing = tmp_path / "s.csv"
    existing.write_text("old")
    base = ["sweep", "--method", "kmeans", "--axis", "n_clusters=2,3", "--data", "n=200"]
    assert main([*base, "--csv", str(existing)]) == 2
    assert one_error_line(capsys) == f"error: --csv {existing} already exists: name another file, or add --force to replace it"
    assert main([*base, "--csv", str(tmp_path / "a"), "--report", str(tmp_path / "a")]) == 2
    assert "both name" in one_error_line(capsys)
    assert existing.read_text() == "old" and runs(fclab_home) == []


def test_an_atomic_write_that_fails_leaves_the_old_file_and_no_temporary(tmp_path):
    target = tmp_path / "report.html"
    target.write_text("the old report")

    def half_then_fail(out):
        out.write(b"<html>half")
        raise RuntimeError("the report failed half-way")

    with pytest.raises(RuntimeError, match="half-way"):
        outputs.write_atomic(target, half_then_fail, replace=True)
    assert target.read_text() == "the old report" and no_temp_files(tmp_path)
    with pytest.raises(outputs.OutputError, match="already exists"):  # appeared after the check: still not replaced
        outputs.write_atomic(target, "new")
    assert target.read_text() == "the old report" and no_temp_files(tmp_path)
    outputs.write_atomic(target, "new", replace=True)
    assert target.read_text() == "new" and no_temp_files(tmp_path)
    assert oct(target.stat().st_mode & 0o777) == oct(0o666 & ~_umask())


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def test_a_write_the_disk_refuses_leaves_the_old_file_and_no_temporary(fclab_home, tmp_path):
    """A real failure: the file-size limit (as a full quota would) stops the assignments (about 2 MB) half-way."""
    table = tmp_path / "big.csv"
    _table(n=150_000).to_csv(table, index=False)
    out = tmp_path / "a.csv"
    out.write_text("the old assignments")
    code = textwrap.dedent(f"""
        import resource, signal, sys
        from dashboard_lib.cli import main
        main(["runs"])  # the store made before the limit
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # so the write fails with EFBIG instead of killing the process
        resource.setrlimit(resource.RLIMIT_FSIZE, (2**20, 2**20))
        sys.exit(main(["audit", {str(table)!r}, *{AUDIT!r}, "--assignments", {str(out)!r}, "--force", "--no-store"]))
    """)
    done = subprocess.run([sys.executable, "-c", code], cwd=REPO, env={**os.environ, "FCLAB_HOME": str(fclab_home)},
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 2, done.stderr
    assert done.stderr.strip().splitlines() == [f"error: could not write --assignments {out}: File too large; nothing "
                                                "was written there"]
    assert out.read_text() == "the old assignments" and no_temp_files(tmp_path)


# Every user error: one line, exit status 2, no run ---------------------------------------------------------------------

def _nested_parquet(path):
    import pyarrow as pa
    import pyarrow.parquet as pq

    pq.write_table(pa.table({"segment": [0, 1, 0, 1], "sex": ["a", "b", "a", "b"], "tags": [[1], [2, 3], [], [4]]}), path)


def test_every_bad_invocation_is_one_line_exit_2_and_records_nothing(fclab_home, table, tmp_path, capsys):
    nested = tmp_path / "nested.parquet"
    _nested_parquet(nested)
    (tmp_path / "empty.csv").write_text("")
    (tmp_path / "notes.txt").write_text("a,b\n1,2\n")
    big_seed = str(2**64 + 1)
    t = str(table)
    cases = [
        ([], "error: the following arguments are required: command"),
        (["nope"], "error: argument command: invalid choice: 'nope'"),
        (["audit", "--bogus"], "error: unrecognized arguments: --bogus"),
        (["runs", "--bogus"], "error: unrecognized arguments: --bogus"),
        (["datasets", "extra"], "error: unrecognized arguments: extra"),
        (["methods", "--json", "x"], "error: unrecognized arguments: x"),
        (["store", "fix"], "error: argument action: invalid choice: 'fix'"),
        (["audit", str(tmp_path / "missing.csv"), *AUDIT], f"error: no file {tmp_path / 'missing.csv'}: check the path"),
        (["audit", str(tmp_path), *AUDIT], f"error: {tmp_path} is a folder: name the table file inside it"),
        (["audit", t, *AUDIT, "--embedding-file", str(tmp_path)], f"error: {tmp_path} is a folder"),
        (["audit", t, *AUDIT, "--embedding-file", str(tmp_path / "nope.csv")], f"error: no file {tmp_path / 'nope.csv'}"),
        (["audit", "/dev/null", *AUDIT], "error: /dev/null is not a regular file"),
        (["audit", str(tmp_path / "empty.csv"), *AUDIT], "error: the file is empty"),
        (["audit", str(tmp_path / "notes.txt"), *AUDIT], "error: unsupported file type 'txt'"),
        (["audit", str(nested), "--clusters", "segment", "--sensitive", "sex"],
         "error: column 'tags' holds nested values (list<element: int64>), not one value per cell"),
        (["audit", t, "--sensitive", "sex"], "error: --clusters COLUMN and --sensitive COLUMN"),
        (["audit", t, *AUDIT, "--seed", "-1"], "error: argument --seed: a seed is a whole number from 0 to 4,294,967,295"),
        (["audit", t, *AUDIT, "--seed", big_seed], "error: argument --seed: a seed is a whole number"),
        (["audit", t, *AUDIT, "--resamples", "-5"], "error: argument --resamples: a whole number from 0 to 100,000, got '-5'"),
        (["audit", t, *AUDIT, "--resamples", "many"], "error: argument --resamples: a whole number from 0 to 100,000"),
        (["audit", t, *AUDIT, "--confidence", "1.5"], "error: argument --confidence: confidence must be a number strictly"),
        (["audit", t, *AUDIT, "--confidence", "nan"], "error: argument --confidence: confidence must be a number strictly"),
        (["audit", "--run", "nope"], "error: "),
        (["upload", str(tmp_path), "--sensitive", "sex", "--name", "x"], f"error: {tmp_path} is a folder"),
        (["upload", str(tmp_path / "gone.csv"), "--sensitive", "sex", "--name", "x"], "error: no file"),
        (["upload", str(nested), "--sensitive", "sex", "--name", "x"], "error: column 'tags' holds nested values"),
        (["train", "--threads", "-3"], "error: argument --threads: a whole number from 1 to 1,024, got '-3'"),
        (["train", "--threads", "0"], "error: argument --threads: a whole number from 1 to 1,024, got '0'"),
        (["train", "--threads", "100000"], "error: argument --threads: a whole number from 1 to 1,024"),
        (["train", "--seed", big_seed], "error: argument --seed: a seed is a whole number from 0 to 4,294,967,295 (2**32 − 1)"),
        (["train", "--seed", "1.5"], "error: argument --seed: a seed is a whole number"),
        (["sweep", "--method", "kmeans", "--axis", "n_clusters=2,3", "--first-seed", big_seed], "error: argument --first-seed"),
        (["sweep", "--method", "kmeans", "--axis", "n_clusters=2,3", "--first-seed", str(2**32 - 1), "--seeds", "2"],
         "error: --first-seed 4,294,967,295 with --seeds 2 goes past the largest seed"),
        (["sweep", "--method", "kmeans", "--axis", "n_clusters=2,3", "--seeds", "0"], "error: argument --seeds"),
        (["sweep", "--method", "kmeans", "--axis", "n_clusters=linear:2:3:999999999", "--dry-run"],
         "error: --axis 'n_clusters=linear:2:3:999999999': COUNT 999,999,999 is more than the 2,000 trials"),
        (["sweep", "--method", "kmeans", "--axis", "n_clusters=2,3", "--report", str(tmp_path)], "error: --report"),
    ]
    for args, message in cases:
        assert main(args) == 2, args
        line = one_error_line(capsys)
        assert line.startswith(message), (args, line)
    assert runs(fclab_home) == []


def test_a_boolean_cluster_column_is_audited_or_refused_never_left_running(fclab_home, tmp_path, capsys):
    path = tmp_path / "b.csv"
    frame = _table()
    frame["flag"] = frame["segment"] > 0
    frame.to_csv(path, index=False)
    code = main(["audit", str(path), "--clusters", "flag", "--sensitive", "sex", "--resamples", "20"])
    if code == 2:
        one_error_line(capsys)
        assert runs(fclab_home) == []
    else:
        assert code == 0 and [r.status for r in runs(fclab_home)] == ["finished"]


@pytest.mark.skipif(not hasattr(os, "setuid"), reason="POSIX permissions")
def test_an_unreadable_file_is_one_line(tmp_path):
    """As a user without the permission: root reads anything, so then the check drops to nobody once Python has
    started (its own files may be root's only)."""
    import shutil
    import tempfile

    folder = tempfile.mkdtemp()
    path = os.path.join(folder, "secret.csv")
    try:
        os.chmod(folder, 0o755)
        _table().to_csv(path, index=False)
        os.chmod(path, 0o000)
        code = textwrap.dedent(f"""
            import os, sys
            from dashboard_lib.cli import main
            if os.geteuid() == 0:
                os.setuid(65534)
            sys.exit(main(["upload", {path!r}, "--sensitive", "sex", "--name", "s"]))
        """)
        done = subprocess.run([sys.executable, "-c", code], cwd=REPO, env={**os.environ, "FCLAB_HOME": str(tmp_path)},
                              capture_output=True, text=True, timeout=300)
        assert done.returncode == 2, done.stderr
        assert done.stderr.strip().splitlines() == [f"error: could not read {path}: Permission denied"]
    finally:
        shutil.rmtree(folder)


def test_only_an_oserror_about_a_path_the_user_named_becomes_one_line(tmp_path):
    from argparse import Namespace

    from dashboard_lib.cli import _names_a_user_path

    args = Namespace(table=str(tmp_path / "t.csv"), out_dir=str(tmp_path / "out"), report=None)
    assert _names_a_user_path(FileNotFoundError(2, "gone", str(tmp_path / "t.csv")), args)
    assert _names_a_user_path(PermissionError(13, "denied", str(tmp_path / "out" / "audit.html")), args)  # inside
    assert _names_a_user_path(PermissionError(13, "denied", str(tmp_path)), args)  # a folder on the way
    assert not _names_a_user_path(PermissionError(13, "denied", "/usr/lib/somewhere.so"), args)
    assert not _names_a_user_path(OSError(28, "No space left on device"), args)  # no file named: a bug or the machine


# Arbitrary files through the audit entry point: a result or one line, never a traceback ------------------------------

CELLS = st.one_of(st.integers(-2**70, 2**70), st.floats(allow_nan=True), st.text(max_size=5), st.booleans(), st.none())


def _audit_file(path) -> tuple[int, str]:
    err = io.StringIO()
    with contextlib.redirect_stderr(err), contextlib.redirect_stdout(io.StringIO()):
        code = main(["audit", str(path), "--clusters", "c", "--sensitive", "g", "--class", "y", "--resamples", "5",
                     "--no-store"])
    return code, err.getvalue()


@settings(max_examples=60, deadline=None, derandomize=True, suppress_health_check=list(HealthCheck))
@given(data=st.binary(max_size=400), ext=st.sampled_from(tables.FORMATS))
def test_arbitrary_bytes_give_one_line_and_exit_2(tmp_path_factory, data, ext):
    path = tmp_path_factory.mktemp("bytes") / f"t.{ext}"
    path.write_bytes(data)
    code, err = _audit_file(path)
    assert code == 2 and len(err.strip().splitlines()) == 1 and "Traceback" not in err, err


@settings(max_examples=60, deadline=None, derandomize=True, suppress_health_check=list(HealthCheck))
@given(rows=st.lists(st.tuples(CELLS, CELLS, CELLS), max_size=12), ext=st.sampled_from(tables.FORMATS))
def test_arbitrary_small_tables_give_an_audit_or_one_line(tmp_path_factory, rows, ext):
    path = tmp_path_factory.mktemp("tables") / f"t.{ext}"
    frame = pd.DataFrame(rows, columns=["c", "g", "y"])
    if ext == "csv":
        frame.to_csv(path, index=False)
    elif ext == "parquet":
        frame.astype(str).to_parquet(path)  # a Parquet column has one type
    else:
        np.savez(path, **{k: np.asarray(frame[k].astype(str)) for k in frame})
    code, err = _audit_file(path)
    assert code in (0, 2) and "Traceback" not in err, err
    if code == 2:
        assert len(err.strip().splitlines()) == 1, err


# Size limit while streaming --------------------------------------------------------------------------------------------

def test_a_sparse_1gb_file_is_refused_before_it_is_read(tmp_path):
    path = tmp_path / "huge.csv"
    with open(path, "wb") as f:
        f.truncate(2**30)  # sparse: no disk used, but 1 GB to read
    code = textwrap.dedent(f"""
        import json, resource
        from dashboard_lib import external
        from dashboard_lib.cli import main
        before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        try:
            external.read_audit_file({str(path)!r})
        except ValueError as exc:
            message = str(exc)
        code = main(["audit", {str(path)!r}, "--clusters", "c", "--sensitive", "s", "--no-store"])
        after = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        print(json.dumps({{"message": message, "code": code, "grew_kib": after - before}}))
    """)
    done = subprocess.run([sys.executable, "-c", code], cwd=REPO, env={**os.environ, "FCLAB_HOME": str(tmp_path / "h")},
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    result = json.loads(done.stdout.strip().splitlines()[-1])
    assert result["message"] == "the file is 1,024 MB, over the 200 MB limit"
    assert result["code"] == 2 and done.stderr.strip() == "error: the file is 1,024 MB, over the 200 MB limit"
    assert result["grew_kib"] < 64 * 1024  # peak memory grew by far less than the file (1 GB), not even 64 MB


def test_a_stream_that_grows_past_the_limit_is_cut_at_limit_plus_one(tmp_path):
    class Counting(io.BytesIO):
        read_total = 0

        def read(self, n=-1):
            chunk = super().read(n)
            Counting.read_total += len(chunk)
            return chunk

    stream = Counting(b"x" * 5000)
    with pytest.raises(ValueError, match="the file grew past the 0 MB limit while it was read"):
        tables.read_limited(stream, 1000)
    assert Counting.read_total == 1001
    assert tables.read_limited(io.BytesIO(b"x" * 1000), 1000) == b"x" * 1000


# A failing record leaves no run running ------------------------------------------------------------------------------

def test_a_record_that_fails_half_way_finishes_the_run_as_failed(fclab_home, tmp_path):
    """A real failure after the run is created: the file-size limit stops the arrays' file (as a full disk would)."""
    path = tmp_path / "wide.csv"
    rng = np.random.default_rng(1)
    frame = _table(n=4000)
    for j in range(16):
        frame[f"x{j}"] = rng.normal(size=len(frame))
    frame.to_csv(path, index=False)
    code = textwrap.dedent(f"""
        import resource, signal, sys
        from dashboard_lib.cli import main
        main(["runs"])  # the store made before the limit
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
        resource.setrlimit(resource.RLIMIT_FSIZE, (120_000, 120_000))
        sys.exit(main(["audit", {str(path)!r}, "--clusters", "segment", "--sensitive", "sex", "--resamples", "20",
                       "--embedding", *[f"x{{j}}" for j in range(16)]]))
    """)
    done = subprocess.run([sys.executable, "-c", code], cwd=REPO, env={**os.environ, "FCLAB_HOME": str(fclab_home)},
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 2, done.stderr
    (line,) = done.stderr.strip().splitlines()
    assert line.startswith("error: could not record the audit in the run store") and "the run is kept as failed" in line
    (run,) = runs(fclab_home)  # read by another process, as `runs` would
    assert run.status == "failed" and "recording the external clustering failed" in run.error
