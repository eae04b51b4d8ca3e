import pandas as pd

from dashboard_lib.plots import (MAX_POINTS_PER_SERIES, REFERENCE_DASH, REFERENCE_WIDTH, accuracy_figure, metrics_figure,
                                 probe_figure, signals_figure, split_signals)


def _long(series: dict[str, list[float]]) -> pd.DataFrame:
    return pd.DataFrame([(step, name, value, 0.0) for name, values in series.items() for step, value in enumerate(values, 1)],
                        columns=["step", "name", "value", "time"])


def test_split_signals():
    names = ["L_total", "disc_acc", "disc_chance", "acc_bias_key", "bias_chance", "grl_coeff", "L_c", "inertia"]
    assert split_signals(names) == {"losses": ["L_c", "L_total"], "accuracies": ["acc_bias_key", "disc_acc"],
                                    "chance": ["bias_chance", "disc_chance"], "other": ["grl_coeff", "inertia"]}


def test_one_panel_per_signal_each_own_scale():
    scalars = _long({"L_c": [3.0, 2.0, 1.0], "L_f": [0.7, 0.69, 0.68], "L_s": [0.1, 0.1, 0.05]})
    fig = signals_figure(scalars, ["L_c", "L_f", "L_s"], log_y=True)
    assert [t.name for t in fig.data] == ["L_c", "L_f", "L_s"]
    assert [list(t.y) for t in fig.data][0] == [3.0, 2.0, 1.0]
    assert {t.xaxis for t in fig.data} == {"x", "x2", "x3"}  # three panels
    assert fig.layout.yaxis.type == "log" and fig.layout.yaxis3.type == "log"


def test_long_series_are_thinned_but_keep_their_last_point():
    scalars = _long({"L_rec": [float(i) for i in range(10 * MAX_POINTS_PER_SERIES)]})
    (trace,) = signals_figure(scalars, ["L_rec"]).data
    assert len(trace.x) <= MAX_POINTS_PER_SERIES + 1 and trace.x[-1] == 10 * MAX_POINTS_PER_SERIES


def test_accuracy_with_dashed_chance():
    scalars = _long({"disc_acc": [0.9, 0.7, 0.55], "disc_chance": [0.5, 0.5, 0.5]})
    fig = accuracy_figure(scalars, ["disc_acc"], ["disc_chance"])
    assert [(t.name, t.line.dash) for t in fig.data] == [("disc_acc", None), ("disc_chance", REFERENCE_DASH)]
    assert fig.data[1].line.width == REFERENCE_WIDTH >= 3  # a chance line a projector shows: thick, long dashes
    assert list(fig.layout.yaxis.range) == [0, 1.02]
    assert fig.layout.title.text == "Classifier accuracy during training (dashed: chance)"


def test_accuracy_title_promises_a_chance_line_only_where_one_is_drawn():
    """ERM logs each (class, bias) group's accuracy and no chance series: the title must not promise a dashed line."""
    scalars = _long({"acc (y=0, red)": [0.9, 0.95], "acc (y=0, green)": [0.3, 0.2]})
    fig = accuracy_figure(scalars, ["acc (y=0, green)", "acc (y=0, red)"], [])
    assert all(t.line.dash != REFERENCE_DASH for t in fig.data) and len(fig.data) == 2
    assert "chance" not in fig.layout.title.text
    # each group in its palette colour (green green, red red), each class in its own line style
    from dashboard_lib.plots import group_colours

    green, red = group_colours(["green", "red"])
    more = _long({"acc (y=0, red)": [0.9], "acc (y=0, green)": [0.3], "acc (y=1, red)": [0.2], "acc (y=1, green)": [0.8]})
    traces = {t.name: t.line for t in accuracy_figure(more, sorted(more["name"].unique()), []).data}
    assert traces["acc (y=1, green)"].color == traces["acc (y=0, green)"].color == green
    assert traces["acc (y=1, red)"].color == traces["acc (y=0, red)"].color == red != green
    assert traces["acc (y=0, red)"].dash == "solid" and traces["acc (y=1, red)"].dash == "dot"
    # a chance series named but not logged (yet) draws nothing and promises nothing
    assert "chance" not in accuracy_figure(scalars, ["acc (y=0, red)"], ["disc_chance"]).layout.title.text


def test_bias_figure_draws_probe_and_link_share_each_beside_its_chance():
    evaluations = [{"epoch": 1, "metrics": {"acc": 0.4, "probe_acc": 0.99, "probe_majority": 0.5, "same_group_share": 0.9,
                                            "same_group_chance": 0.52}},
                   {"epoch": 2, "metrics": {"acc": 0.5, "probe_acc": 0.97, "probe_majority": 0.5, "same_group_share": 0.6,
                                            "same_group_chance": 0.52}}]
    fig = probe_figure(evaluations)
    traces = {t.name: t for t in fig.data}
    assert list(traces["same-group link share"].y) == [0.9, 0.6]
    assert list(traces["chance (group-blind links)"].y) == [0.52, 0.52]
    for chance, series in (("chance (group-blind links)", "same-group link share"),
                           ("chance (majority group)", "probe accuracy (held out)")):
        assert traces[chance].line.dash == REFERENCE_DASH and traces[chance].line.width == REFERENCE_WIDTH >= 3
        assert traces[chance].line.color == traces[series].line.color  # each chance beside its own series
    assert list(traces["probe accuracy (held out)"].y) == [0.99, 0.97]
    # a run without coefficients (DEC, DFC…) draws the probe alone
    only_probe = probe_figure([{"epoch": 1, "metrics": {"probe_acc": 0.7, "probe_majority": 0.6}}])
    assert [t.name for t in only_probe.data] == ["probe accuracy (held out)", "chance (majority group)"]
    assert only_probe.layout.title.text == "Bias probe: the group read from the embedding"
    assert fig.layout.title.text == "Bias: the group in the embedding and the links"


def test_probe_titles_fit_half_a_1280_px_page():
    """The Monitor draws the probe chart in one of two columns (about 600 px wide at 1280 px): at plotly's 17 px title
    font (about 8.5 px a character on average, 10 px to be safe) a title must stay under 55 characters."""
    from dashboard_lib.plots import PROBE_TITLES

    assert all(len(title) * 10 <= 550 for title in PROBE_TITLES.values())


def test_the_progress_text_gives_the_elapsed_time_and_the_time_left_at_the_pace_so_far():
    from dashboard_lib.ui import progress_text

    assert progress_text(0.25, 90, "epoch 5/20") == "epoch 5/20 · 25% · elapsed 1:30 · about 4:30 left"
    assert progress_text(0.01, 10) == "1% · elapsed 0:10"  # too early to tell the time left
    assert progress_text(0.5, 4000) == "50% · elapsed 1:06:40 · about 1:06:40 left"


def test_restarts_are_drawn_as_separate_segments_and_counted_in_the_title():
    """k-means logs inertia restart after restart: each restart is its own segment (a gap before each new one), and
    the restart series itself is no panel of its own."""
    scalars = _long({"inertia": [9.0, 5.0, 4.0, 8.0, 3.0], "restart": [1, 1, 1, 2, 2]})
    assert split_signals(scalars["name"].unique())["other"] == ["inertia"]
    fig = signals_figure(scalars, ["inertia", "restart"])
    (trace,) = fig.data
    assert list(trace.x) == [1, 2, 3, 3.5, 4, 5]  # a gap between step 3 (restart 1) and step 4 (restart 2)
    assert trace.y[3] is None or trace.y[3] != trace.y[3]  # NaN: the line breaks there
    assert trace.connectgaps is False
    assert fig.layout.annotations[0].text == "inertia (2 restarts, one segment each)"


def test_metric_charts_name_the_unit_the_evaluations_count():
    evaluations = [{"epoch": e, "metrics": {"acc": 0.5, "probe_acc": 0.9, "probe_majority": 0.7}} for e in (0, 100, 200)]
    assert metrics_figure(evaluations, ["acc"], unit="iteration").layout.xaxis.title.text == "iteration"
    assert probe_figure(evaluations, unit="iteration").layout.xaxis.title.text == "iteration"
    assert metrics_figure(evaluations, ["acc"]).layout.xaxis.title.text == "epoch"
