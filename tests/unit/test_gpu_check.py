"""bench/gpu_check.py: the planner, and the dry run end to end (the same script a GPU would run, tiny schedules on the
CPU), with the format of its JSON and Markdown outputs."""
from __future__ import annotations

import json
import os
import subprocess
import sys
import time

import gpu_check  # bench/gpu_check.py: pytest.ini puts bench/ on the path, as running a bench script does
import pytest

from tests.conftest import REPO, SHARED_DATA

HAVE_NPZ = (SHARED_DATA / "mnist_usps.npz").is_file()


def test_planner_keeps_jobs_in_order_while_the_predicted_wall_fits():
    jobs = [j for j in gpu_check.JOBS if j.name in ("fcmi_mnist_usps", "senet_ood", "inv_senet_ood", "statdec_lt10")]
    estimates = {"fcmi_mnist_usps": (200.0, 50.0), "senet_ood": (300.0, 280.0), "inv_senet_ood": (300.0, 280.0),
                 "statdec_lt10": (100.0, 20.0)}
    # Alone, each fits; together the two compute-bound SENets need 560 s of GPU: the second waits for a second call.
    chosen, left = gpu_check.plan(jobs, estimates, budget_s=480)
    assert [j.name for j in chosen] == ["fcmi_mnist_usps", "senet_ood", "statdec_lt10"]
    assert [j.name for j in left] == ["inv_senet_ood"]
    assert gpu_check.predicted_wall({n: estimates[n] for n in ("senet_ood", "statdec_lt10")}) == 300.0
    assert gpu_check.predicted_wall({n: estimates[n] for n in ("senet_ood", "inv_senet_ood")}) == 560.0
    # A job over the budget alone still runs when it comes first: a second call always makes progress.
    assert [j.name for j in gpu_check.plan(jobs[1:2], estimates, budget_s=100)[0]] == ["senet_ood"]


def test_every_job_has_a_paper_reference_and_a_gpu_estimate():
    for job in gpu_check.JOBS:
        reference = gpu_check.paper_reference(job)
        assert reference["source"]
        assert set(reference["metrics"]) <= set(job.metrics)
        seconds, busy = gpu_check.estimate_seconds(job, gpu_check.resolved_hparams(job, False), job.n, on_gpu=True)
        assert 0 < busy <= seconds < 3600, job.name
    fcmi = next(j for j in gpu_check.JOBS if j.name == "fcmi_mnist_usps")
    assert gpu_check.paper_reference(fcmi)["metrics"]["acc"] == 0.967


@pytest.mark.timeout(300)
def test_dry_run_writes_the_table_and_the_json(tmp_path):
    out = tmp_path / "check"
    # The package importable as `make install` leaves it, also from a plain checkout: this checkout's copy.
    env = {**os.environ, "PYTHON": sys.executable, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(REPO)}
    start = time.perf_counter()
    proc = subprocess.run(["bash", str(REPO / "bench" / "gpu_check.sh"), str(out), "--dry-run", "--data-dir",
                           str(SHARED_DATA)], cwd=REPO, env=env, capture_output=True, text=True, timeout=280)
    wall = time.perf_counter() - start
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    assert "(a) smoke test" in proc.stdout and "(b) paper schedules" in proc.stdout and "(c) wrote" in proc.stdout
    assert wall < 180, f"the dry run took {wall:.0f} s (must stay under 3 minutes on 2 cores)"

    report = json.loads((out / "gpu_check.json").read_text())
    assert report["dry_run"] is True and report["device"] == "cpu"
    assert {s["method"] for s in report["smoke"]} == set(gpu_check.SMOKE_CUT)
    assert all(s["ok"] for s in report["smoke"]), [s for s in report["smoke"] if not s["ok"]]
    assert [r["name"] for r in report["jobs"]] == [j.name for j in gpu_check.JOBS]
    for row in report["jobs"]:
        if HAVE_NPZ:
            assert row["status"] == "finished", row
            assert all(isinstance(row["metrics"].get(m), float) for m in row["metrics_shown"]), row
            assert row["seconds"] > 0 and row["device"] == "cpu"
        else:  # CI without ../shared/data: the paper datasets are skipped, and said so
            assert row["status"] == "skipped: no mnist_usps.npz"
        assert row["paper"]["source"] and row["estimate_s"] > 0
    assert report["not_run"] == [] and report["rerun"] is None

    table = (out / "gpu_check.md").read_text()
    assert table.startswith("# GPU check: cpu") and "dry run" in table
    assert "| job | dataset | metric | ours | paper | seconds (estimate) | device | schedule | status |" in table
    fcmi_row = next(line for line in table.splitlines() if line.startswith("| fcmi_mnist_usps |"))
    assert "| acc |" in fcmi_row and "| 96.7 |" in fcmi_row  # FCMI's paper ACC beside ours
    assert table.count("| yes |") == len(gpu_check.SMOKE_CUT)
