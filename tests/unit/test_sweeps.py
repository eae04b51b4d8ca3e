"""Sweeps without Ray: the grid, the trials, the estimate, the aggregation over seeds, the figures, the stream's messages."""
import math
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from dashboard_lib import cli, plots
from dashboard_lib.params import Param
from dashboard_lib.store import RunStore
from dashboard_lib.sweeps import (SWEEP_PRESETS, Axis, StreamingStore, SweepSpec, aggregate, estimate_time, slots,
                                  sweep_figures, sweep_frame)

FLOAT = Param("w", 1.0, low=0, high=100, log=True)
INT = Param("k", 4, kind="int", low=1, high=50)


def test_a_list_of_values_is_converted_checked_and_kept_in_order_without_repeats():
    assert Axis("w", values=["0.5", 2, 0.5, "1e1"]).resolve(FLOAT, "m") == [0.5, 2.0, 10.0]
    with pytest.raises(ValueError, match=r"w = 200 is outside its range \[0, 100\]"):
        Axis("w", values=[1, 200]).resolve(FLOAT, "m")
    with pytest.raises(ValueError, match="give w at least one value"):
        Axis("w", values=[]).resolve(FLOAT, "m")


def test_linear_and_log_grids_hit_their_ends_and_round_for_display():
    assert Axis("w", grid="linear", low=0, high=1, count=5).resolve(FLOAT, "m") == [0.0, 0.25, 0.5, 0.75, 1.0]
    assert Axis("w", grid="log", low=0.01, high=100, count=5).resolve(FLOAT, "m") == [0.01, 0.1, 1.0, 10.0, 100.0]
    assert Axis("w", grid="linear", low=0.1, high=0.3, count=3).resolve(FLOAT, "m") == [0.1, 0.2, 0.3]  # not 0.30000000000000004
    with pytest.raises(ValueError, match="a log grid needs low > 0"):
        Axis("w", grid="log", low=0, high=1, count=3).resolve(FLOAT, "m")
    with pytest.raises(ValueError, match="low ≤ high"):
        Axis("w", grid="linear", low=2, high=1, count=3).resolve(FLOAT, "m")


def test_an_int_grid_rounds_and_drops_the_repeats():
    assert Axis("k", grid="linear", low=1, high=3, count=5).resolve(INT, "m") == [1, 2, 3]  # 1, 1.5→2, 2, 2.5→2, 3


def test_random_samples_are_seeded_sorted_within_bounds_and_log_uniform_for_a_log_parameter():
    a = Axis("w", grid="random", low=0.01, high=100, count=200, seed=3).resolve(FLOAT, "m")
    assert a == Axis("w", grid="random", low=0.01, high=100, count=200, seed=3).resolve(FLOAT, "m")
    assert a == sorted(a) and 0.01 <= a[0] and a[-1] <= 100
    below_one = sum(v < 1 for v in a) / len(a)
    assert 0.35 < below_one < 0.65  # log-uniform: half the mass below the geometric middle 1; uniform would give 1 %
    assert a != Axis("w", grid="random", low=0.01, high=100, count=200, seed=4).resolve(FLOAT, "m")


def test_only_numbers_can_be_swept():
    with pytest.raises(ValueError, match="variational is a bool hyperparameter of dfc"):
        SweepSpec("mnist_optdigits", "dfc", [Axis("variational", values=[True])]).trials()


def test_trials_are_the_grid_times_the_seeds_on_the_preset_with_the_fixed_values():
    spec = SweepSpec("mnist_optdigits", "dfc", [Axis("alpha_f", values=[0, 1]), Axis("alpha_s", values=[0.5, 2, 4])],
                     seeds=2, first_seed=7, preset="quick", fixed={"alpha_s": 99, "lr": "0.005"})
    trials = spec.trials()
    assert len(trials) == 2 * 3 * 2
    assert [(t.hparams["alpha_f"], t.hparams["alpha_s"], t.seed) for t in trials[:4]] == [(0, 0.5, 7), (0, 0.5, 8), (0, 2, 7), (0, 2, 8)]
    assert all(t.hparams["lr"] == 0.005 and t.hparams["iterations"] == 300 for t in trials)  # fixed value, quick schedule
    with pytest.raises(ValueError, match="alpha_f is swept twice"):
        SweepSpec("mnist_optdigits", "dfc", [Axis("alpha_f", values=[0]), Axis("alpha_f", values=[1])]).trials()
    with pytest.raises(ValueError, match="dfc has no hyperparameter 'gamma'"):
        SweepSpec("mnist_optdigits", "dfc", [Axis("gamma", values=[0])]).trials()
    with pytest.raises(ValueError, match="one or two hyperparameters, not 3"):
        SweepSpec("mnist_optdigits", "dfc", [Axis(n, values=[1]) for n in ("alpha_f", "alpha_s", "alpha")]).trials()
    with pytest.raises(ValueError, match="at most 2,000"):
        SweepSpec("mnist_optdigits", "dfc", [Axis("alpha_f", grid="linear", low=0, high=1, count=50),
                                             Axis("alpha_s", grid="linear", low=0, high=1, count=50)]).trials()


def test_every_papers_preset_is_a_valid_sweep_on_the_built_in_data():
    assert {"DFC Figure 6 (a)", "DFC Figure 6 (b)", "FCMI α / β", "Inv-SENnet λ", "ClusterFix γ"} <= set(SWEEP_PRESETS)
    a = SWEEP_PRESETS["DFC Figure 6 (a)"].spec.trials()
    assert {t.hparams["alpha_s"] for t in a} == {0.0} and len({t.hparams["alpha_f"] for t in a}) == 5
    b = SWEEP_PRESETS["DFC Figure 6 (b)"].spec.trials()
    assert {t.hparams["alpha_f"] for t in b} == {1.0}
    for preset in SWEEP_PRESETS.values():
        assert preset.spec.trials()


def _finished(store, method, seconds, hparams, device="cpu", sweep_id=None, metrics=None, seed=0, options=None):
    config = {"hparams": hparams, "dataset_options": options or {"n": 0, "seed": 0}}
    run_id = store.create_run(dataset="mnist_optdigits", method=method, config=config, seed=seed, device=device,
                              environment={}, sweep_id=sweep_id)
    store.finish(run_id, "finished", metrics=metrics or {})
    store._update(run_id, created=1000.0, ended=1000.0 + seconds)
    return run_id


def test_the_estimate_is_the_median_of_matching_finished_runs_spread_over_the_slots(tmp_path):
    store = RunStore(tmp_path)
    quick = SweepSpec("mnist_optdigits", "dfc", [Axis("alpha_f", values=[0, 1, 2])], seeds=1, preset="quick")
    assert estimate_time(store, quick.trials(), slots=2) is None  # nothing measured yet
    schedule = {**quick.trials()[0].hparams}
    for seconds in (100, 120, 200):
        _finished(store, "dfc", seconds, schedule)
    _finished(store, "dfc", 5000, {**schedule, "iterations": 20000})  # another schedule: not counted
    _finished(store, "dfc", 1, schedule, device="cuda:0")  # another kind of device: not counted
    _finished(store, "fcmi", 1, schedule)  # another method
    _finished(store, "dfc", 1, schedule, options={"n": 500, "seed": 0})  # a smaller subset of the data
    guess = estimate_time(store, quick.trials(), slots=2)
    assert guess.seconds_per_trial == pytest.approx(120)  # the median of 100, 120, 200
    assert guess.total_seconds == pytest.approx(2 * 120) and guess.slots == 2  # 3 trials, 2 at once: 2 waves
    assert "same schedule" in guess.basis


def test_slots_follow_the_cluster_and_the_trials_resources():
    spec = SweepSpec("mnist_optdigits", "kmeans", [Axis("n_init", values=[1])], cpus_per_trial=2, gpus_per_trial=0.5)
    assert slots({"CPU": 16, "GPU": 1}, spec) == 2  # two trials share the GPU
    spec.gpus_per_trial = 0
    assert slots({"CPU": 16}, spec) == 8
    assert slots({"CPU": 1}, spec) == 1


def _sweep_with_runs(store):
    spec = SweepSpec("mnist_optdigits", "kmeans", [Axis("n_init", values=[1, 2])], seeds=3)
    sweep_id = store.create_sweep(spec.to_dict(), 6, None)
    values = {(1, 0): 0.2, (1, 1): 0.4, (1, 2): 0.9, (2, 0): 0.5, (2, 1): 0.7}
    for (n_init, seed), balance in values.items():
        _finished(store, "kmeans", 3, {"n_init": n_init}, sweep_id=sweep_id, seed=seed,
                  metrics={"balance": balance, "acc": 0.5 + balance / 10, "entropy_per_group": [1, 2]})
    failed = store.create_run(dataset="mnist_optdigits", method="kmeans", config={"hparams": {"n_init": 2}}, seed=2,
                              device="cpu", environment={}, sweep_id=sweep_id)
    store.finish(failed, "interrupted", metrics={"balance": 0.0}, error="worker died")
    return sweep_id


def test_the_aggregate_is_the_mean_over_finished_seeds_with_a_labelled_band(tmp_path):
    store = RunStore(tmp_path)
    sweep_id = _sweep_with_runs(store)
    frame = sweep_frame(store, sweep_id)
    assert len(frame) == 6 and "entropy_per_group" not in frame  # lists are not columns
    assert list(frame["n_init"]) == [1, 1, 1, 2, 2, 2]
    minmax = aggregate(frame, ["n_init"], "balance", "minmax").set_index("n_init")
    assert minmax.loc[1, "mean"] == pytest.approx(0.5) and minmax.loc[1, "n"] == 3
    assert (minmax.loc[1, "low"], minmax.loc[1, "high"]) == pytest.approx((0.2, 0.9))
    assert minmax.loc[2, "mean"] == pytest.approx(0.6) and minmax.loc[2, "n"] == 2  # the interrupted run left out
    std = aggregate(frame, ["n_init"], "balance", "std").set_index("n_init")
    sd = math.sqrt(((0.2 - 0.5) ** 2 + (0.4 - 0.5) ** 2 + (0.9 - 0.5) ** 2) / 2)  # sample standard deviation
    assert (std.loc[1, "low"], std.loc[1, "high"]) == pytest.approx((0.5 - sd, 0.5 + sd))
    assert aggregate(frame, ["n_init"], "nmi").empty
    with pytest.raises(ValueError, match="band must be one of"):
        aggregate(frame, ["n_init"], "balance", "iqr")


def test_the_figures_draw_the_mean_and_band_and_a_scatter_whose_points_name_their_runs(tmp_path):
    store = RunStore(tmp_path)
    sweep_id = _sweep_with_runs(store)
    figures = sweep_figures(store.get_sweep(sweep_id), sweep_frame(store, sweep_id), ["balance"], "minmax")
    band, mean = figures["balance"].data
    assert list(mean.y) == pytest.approx([0.5, 0.6]) and list(mean.x) == [1, 2]
    assert max(band.y) == pytest.approx(0.9) and min(band.y) == pytest.approx(0.2)
    ids = {c[1] for trace in figures["pareto"].data if trace.customdata is not None for c in trace.customdata}
    finished = {r.id for r in store.list_runs(sweep_id=sweep_id) if r.status == "finished"}
    assert ids == finished


def test_a_two_parameter_sweep_draws_a_heatmap_with_blank_cells_where_nothing_finished():
    agg = pd.DataFrame({"a": [1, 1, 2], "b": [10, 20, 10], "mean": [0.1, 0.2, 0.3], "low": 0, "high": 0, "n": [2, 2, 1]})
    fig = plots.sweep_heatmap(agg, ["a", "b"], "mnce")
    z = np.asarray(fig.data[0].z, dtype=float)
    assert z[0].tolist() == [0.1, 0.2] and z[1, 0] == 0.3 and np.isnan(z[1, 1])


def test_the_worker_side_store_turns_every_write_into_a_message_and_sends_saved_files(tmp_path):
    stream = StreamingStore(tmp_path)
    stream.set_progress("x", 0.1, "a")
    stream.set_progress("x", 0.2, "b")  # only the latest progress travels
    stream.add_scalars("x", iter([(1, "loss", 2.0, 5.0)]))
    stream.add_evaluation("x", 3, {"acc": 1.0}, {"assignment": np.zeros(2)})
    (tmp_path / "weights.pt").write_bytes(b"w")
    stream.finish("x", "finished", metrics={"acc": 1.0})
    kinds = [m[0] for m in stream.drain()]
    assert kinds == ["progress", "scalars", "evaluation", "file", "finish"]
    assert stream.drain() == []


def test_the_cli_reads_axes_as_lists_or_grids():
    assert cli.parse_axis("alpha_f=0,0.5,1").values == ["0", "0.5", "1"]
    a = cli.parse_axis("beta=log:0.01:1:3")
    assert (a.grid, a.low, a.high, a.count) == ("log", 0.01, 1.0, 3)
    assert cli.parse_axis("beta=random:0:1:4:9").seed == 9
    with pytest.raises(cli.CLIError, match="wants log:LOW:HIGH:COUNT"):
        cli.parse_axis("beta=log:1:2")
    with pytest.raises(cli.CLIError, match="NAME=v1,v2"):
        cli.parse_axis("beta")


def test_a_sweep_on_a_variant_gives_every_trial_its_settings_under_the_schedules_budget(tmp_path, monkeypatch, capsys):
    from dashboard_lib.methods import get_method

    spec = SweepSpec("mnist_optdigits", "inv_senet", [Axis("lambda_adv", values=[0.1, 1])], preset="quick",
                     variant="public code", fixed={"mu": 0.5})
    trials = spec.trials()
    quick = get_method("inv_senet").quick
    for trial, lam in zip(trials, (0.1, 1.0)):
        hp = trial.hparams
        assert hp["lambda_adv"] == lam and hp["mu"] == 0.5  # the axis, then the fixed value, win
        assert hp["bias_head"] == "shared" and hp["affinity"] == "knn" and hp["dict_size"] == 0  # the variant
        assert hp["epochs"] == quick["epochs"] and hp["width"] == quick["width"]  # the quick budget
    assert SweepSpec.from_dict(spec.to_dict()).variant == "public code"
    old = spec.to_dict()
    del old["variant"]  # a sweep stored before variants existed
    assert SweepSpec.from_dict(old).trials()[0].hparams["bias_head"] == "separate"
    with pytest.raises(ValueError, match="unknown variant 'repo' of method inv_senet"):
        SweepSpec("mnist_optdigits", "inv_senet", [Axis("mu", values=[1])], variant="repo").trials()
    monkeypatch.setenv("FCLAB_HOME", str(tmp_path))
    assert cli.main(["sweep", "--method", "senet", "--variant", "public code", "--axis", "gamma=100,200", "--dry-run"]) == 0
    assert "2 trials of senet" in capsys.readouterr().err
    assert cli.main(["sweep", "--method", "kmeans", "--variant", "public code", "--axis", "n_init=1,2", "--dry-run"]) == 2
    assert "method kmeans has no named variants" in capsys.readouterr().err


def test_the_cli_dry_run_lists_the_trials_of_a_preset_and_starts_nothing(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("FCLAB_HOME", str(tmp_path))
    assert cli.main(["sweep", "--preset", "DFC Figure 6 (a)", "--seeds", "1", "--dry-run"]) == 0
    out = capsys.readouterr()
    assert "5 trials of dfc on mnist_optdigits" in out.err
    assert out.out.count("alpha_f") == 5
    assert RunStore(tmp_path / "store").list_sweeps() == []
    assert cli.main(["sweep", "--preset", "no such"]) == 2
    assert "unknown sweep preset" in capsys.readouterr().err


def test_a_sweep_of_inv_senet_reads_its_bias_classifiers_at_their_last_step_and_says_which_epoch_metrics_are_from(tmp_path):
    store = RunStore(tmp_path)
    spec = SweepSpec("mnist_optdigits", "inv_senet", [Axis("lambda_adv", values=[0, 10])])
    sweep_id = store.create_sweep(spec.to_dict(), 2, None)
    run_id = _finished(store, "inv_senet", 5, {"lambda_adv": 10}, sweep_id=sweep_id, metrics={"acc": 0.5})
    store.add_scalars(run_id, [(9, "acc_bias_key", 0.55, 1.0), (2, "acc_bias_key", 0.97, 2.0), (9, "L_SE", 1.0, 1.0)])
    store.add_evaluation(run_id, 3, {"acc": 0.4})
    store.add_evaluation(run_id, 7, {"acc": 0.5})
    row = sweep_frame(store, sweep_id).iloc[0]
    assert row["acc_bias_key"] == 0.55  # step 9's value, logged before step 2's
    assert "acc_bias_query" not in row and row["metrics_epoch"] == 7


def test_an_address_nothing_listens_on_is_refused_at_once_and_no_sweep_is_recorded(tmp_path):
    import socket

    from dashboard_lib.jobs import JobRegistry
    from dashboard_lib.sweeps import SweepRunner, check_address

    with socket.socket() as s:  # a port that was free a moment ago: nothing listens on it
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    with pytest.raises(ValueError, match=rf"cannot reach a Ray cluster at 127.0.0.1:{port} .*ray start --head"):
        check_address(f"127.0.0.1:{port}")
    with pytest.raises(ValueError, match="a Ray address is HOST:PORT"):
        check_address("my-cluster")
    registry = JobRegistry(RunStore(tmp_path))
    spec = SweepSpec("mnist_optdigits", "kmeans", [Axis("n_init", values=[1])])
    with pytest.raises(ValueError, match="cannot reach"):
        SweepRunner(registry).start(spec, address=f"ray://127.0.0.1:{port}")
    assert registry.store.list_sweeps() == []


def test_a_bias_classifiers_curve_is_drawn_against_its_chance_rate(tmp_path):
    store = RunStore(tmp_path)
    spec = SweepSpec("mnist_optdigits", "dfc", [Axis("alpha_f", values=[0, 1])])
    sweep_id = store.create_sweep(spec.to_dict(), 2, None)
    for alpha_f, acc in ((0, 0.9), (1, 0.6)):
        _finished(store, "dfc", 5, {"alpha_f": alpha_f}, sweep_id=sweep_id, metrics={"disc_acc": acc, "disc_chance": 0.5})
    fig = sweep_figures(store.get_sweep(sweep_id), sweep_frame(store, sweep_id), ["disc_acc"])["disc_acc"]
    line = fig.layout.shapes[0]
    assert (line.y0, line.y1) == (0.5, 0.5) and fig.layout.annotations[0].text == "chance (1/M): 0.500"


def test_a_curve_of_nearly_equal_values_is_not_zoomed_into_a_trend():
    agg = pd.DataFrame({"w": [0, 1, 2], "mean": [0.350, 0.352, 0.349], "low": [0.350, 0.352, 0.349],
                        "high": [0.350, 0.352, 0.349], "n": [1, 1, 1]})
    low, high = plots.sweep_curve(agg, "w", "acc", band_label="min–max over seeds").layout.yaxis.range
    assert high - low >= 0.1 and low <= 0.349 and high >= 0.352
    zero = plots.sweep_curve(agg.assign(mean=0.0, low=0.0, high=0.0), "w", "balance", band_label="b").layout.yaxis.range
    assert zero[0] == 0.0  # never below 0 for a metric that cannot be


def test_ray_is_imported_only_when_a_sweep_runs():
    import subprocess
    import sys

    from tests.conftest import REPO

    code = ("import sys, dashboard_lib.sweeps, dashboard_lib.cli, dashboard_lib.jobs; "
            "print('ray' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, timeout=120)
    assert out.stdout.strip() == "False", out.stderr


def test_what_a_sweep_reads_of_a_method_comes_from_its_declarations():
    from dashboard_lib.methods import REGISTRY
    from dashboard_lib.sweeps import pareto_axes, sweep_metrics

    assert {cls.kind for cls in REGISTRY.values()} == {"clustering", "classifier"}
    assert {i for i, cls in REGISTRY.items() if cls.kind == "classifier"} == {"erm", "clusterfix"}
    assert sweep_metrics("clusterfix") == ["worst_group_acc", "unbiased_acc", "avg_acc", "probe_acc"]
    assert pareto_axes("erm") == ("avg_acc", "worst_group_acc") and pareto_axes("fcmi") == ("acc", "balance")
    assert sweep_metrics("inv_senet") == ["acc", "nmi", "balance", "mnce", "entropy", "f_beta", "acc_bias_key",
                                          "acc_bias_query", "same_group_share", "probe_acc"]
    assert sweep_metrics("idec")[-3:] == ["tail_recall", "min_class_recall", "probe_acc"]
    assert sweep_metrics("dfc")[-2:] == ["disc_acc", "probe_acc"] and sweep_metrics("kmeans")[-2:] == ["f_beta", "probe_acc"]
    assert {i for i, cls in REGISTRY.items() if cls.signal_series} == {"senet", "inv_senet"}
    assert {i for i, cls in REGISTRY.items() if cls.explainable} == {"erm", "clusterfix"}
    assert {i for i, cls in REGISTRY.items() if cls.debiases_with_clusters} == {"clusterfix"}


# --- sweeps that compare methods -----------------------------------------------------------------------------------
DEEP_AND_CLASSIC = "Deep and classic fair clustering on the built-in digits"


def _comparison(**changes) -> SweepSpec:
    return SweepSpec.from_dict({**SWEEP_PRESETS[DEEP_AND_CLASSIC].spec.to_dict(), **changes})


def test_a_comparison_trains_each_method_at_its_own_settings_over_the_seeds_and_round_trips():
    from dashboard_lib.methods import get_method

    spec = _comparison(seeds=2)
    trials = spec.trials()
    methods_ = ["kmeans", "fcmi", "fairlets", "fair_assignment", "variational_fair", "socially_fair_kmeans"]
    assert [(t.method, t.seed) for t in trials] == [(m, s) for m in methods_ for s in (0, 1)]
    assert spec.method_ids == methods_ and spec.axes == []
    fcmi = next(t for t in trials if t.method == "fcmi")
    assert fcmi.hparams["epochs"] == get_method("fcmi").quick["epochs"]  # its quick demo
    assert next(t for t in trials if t.method == "variational_fair").hparams["lam"] == \
        next(p.default for p in get_method("variational_fair").params if p.name == "lam")  # declared settings
    assert SweepSpec.from_dict(spec.to_dict()) == spec
    entry = spec.to_dict()["compare"][1]
    assert entry == {"method": "fcmi", "fixed": {}, "variant": None}
    fixed = _comparison(compare=[{"method": "variational_fair", "fixed": {"lam": 500.0}}, {"method": "kmeans"}])
    assert fixed.trials()[0].hparams["lam"] == 500.0 and fixed.method_ids == ["variational_fair", "kmeans"]


def test_a_comparison_refuses_axes_a_method_twice_and_mixed_kinds():
    from dashboard_lib.sweeps import spec as spec_module

    with pytest.raises(ValueError) as info:
        _comparison(axes=[{"name": "n_init", "values": [1]}]).trials()
    assert str(info.value) == spec_module.ERR_COMPARE_AXES
    with pytest.raises(ValueError) as info:
        _comparison(compare=[{"method": "kmeans"}, {"method": "kmeans", "fixed": {"n_init": 2}}]).trials()
    assert str(info.value) == spec_module.ERR_COMPARE_TWICE.format(method="kmeans")
    with pytest.raises(ValueError) as info:
        _comparison(compare=[{"method": "kmeans"}, {"method": "erm"}]).trials()
    assert str(info.value) == spec_module.ERR_COMPARE_KINDS.format(kinds="kmeans (clustering), erm (classifier)")


def test_a_stored_sweep_from_before_comparisons_still_reads():
    old = SweepSpec("mnist_optdigits", "kmeans", [Axis("n_init", values=[1, 2])]).to_dict()
    del old["compare"]
    spec = SweepSpec.from_dict(old)
    assert spec.compare == [] and spec.method_ids == ["kmeans"] and len(spec.trials()) == 2


def test_the_estimate_of_a_comparison_counts_each_method_at_its_own_pace_and_names_the_unmeasured(tmp_path):
    store = RunStore(tmp_path)
    spec = _comparison(seeds=2, compare=[{"method": "kmeans"}, {"method": "fcmi"}, {"method": "fairlets"}])
    trials = spec.trials()
    _finished(store, "kmeans", 10, trials[0].hparams)
    _finished(store, "fcmi", 100, trials[2].hparams)
    guess = estimate_time(store, trials, slots=2)
    assert guess.missing == ["fairlets"]  # no finished run: left out, so the figure is a lower bound
    # The queue hands out kmeans 10, kmeans 10, fcmi 100, fcmi 100 to two slots: 10 | 10, then 110 | 110.
    assert guess.total_seconds == pytest.approx(110) and guess.seconds_per_trial == pytest.approx(55)
    assert "kmeans, fcmi" in guess.basis
    _finished(store, "fairlets", 1, trials[4].hparams)
    assert estimate_time(store, trials, slots=2).missing == []


def test_a_comparisons_results_draw_every_method_on_one_pareto_chart_and_a_bar_per_method(tmp_path):
    store = RunStore(tmp_path)
    spec = _comparison(seeds=2, compare=[{"method": "kmeans"}, {"method": "fcmi"}, {"method": "fair_assignment"}])
    sweep_id = store.create_sweep(spec.to_dict(), 6, None)
    values = {"fair_assignment": (0.5, 0.9), "kmeans": (0.8, 0.1), "fcmi": (0.7, 0.6)}
    for method, (acc, balance) in values.items():
        for seed in (0, 1):
            _finished(store, method, 3, {}, sweep_id=sweep_id, seed=seed,
                      metrics={"acc": acc + seed / 100, "balance": balance, "nmi": 0.5})
    frame = sweep_frame(store, sweep_id)
    assert list(frame["method"]) == ["kmeans", "kmeans", "fcmi", "fcmi", "fair_assignment", "fair_assignment"]
    figures = sweep_figures(store.get_sweep(sweep_id), frame, ["acc", "balance"])
    assert set(figures) == {"methods", "pareto"}
    traces = {t.name: t for t in figures["pareto"].data}
    for method, (acc, balance) in values.items():  # one legend entry per method, each of its seeds a point
        assert list(traces[method].x) == pytest.approx([acc, acc + 0.01]) and list(traces[method].y) == [balance] * 2
        assert all(c[0].startswith(f"{method} · ") for c in traces[method].customdata)
    bars = {t.name: list(t.y) for t in figures["methods"].data}
    assert bars["fcmi"] == pytest.approx([0.705, 0.6])  # the mean over its seeds


def test_the_cli_lists_and_dry_runs_the_comparison_preset(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("FCLAB_HOME", str(tmp_path))
    assert cli.main(["sweep", "--preset", DEEP_AND_CLASSIC, "--seeds", "2", "--dry-run"]) == 0
    out = capsys.readouterr()
    assert "12 trials of kmeans, fcmi, fairlets, fair_assignment, variational_fair, socially_fair_kmeans" in out.err
    assert out.out.count('"method": "fcmi"') == 2
    assert cli.main(["sweep", "--preset", DEEP_AND_CLASSIC, "--set", "n_init=2", "--dry-run"]) == 2
    assert cli.ERR_COMPARE_SETTINGS in capsys.readouterr().err
    assert cli.main(["sweep", "--preset", DEEP_AND_CLASSIC, "--method", "kmeans", "--axis", "n_init=1,2",
                     "--dry-run"]) == 0  # a sweep of that one method
    assert "6 trials of kmeans on" in capsys.readouterr().err  # 2 values × the preset's 3 seeds
    assert cli.main(["sweep", "--list-presets"]) == 0
    assert "kmeans, fcmi, fairlets" in capsys.readouterr().out
