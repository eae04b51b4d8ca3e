"""The audit report a fairness auditor hands over: one self-contained HTML file (no script, font or image fetched:
figures are inline SVG), beside a JSON of the same numbers and a CSV of the assignments keyed by row id; and the
same three for a repair, holding both clusterings.

Knows nothing of Streamlit.
"""
from __future__ import annotations

import html
import json
import time

import numpy as np
import pandas as pd

from . import metrics as M
from .auditing import AuditResult, AttributeAudit, Estimate, cluster_codes, metric_keys, saved_cluster_ids
from .plots import group_colours, share_bar_rows
from .repairing import COSTS, DISTANCE, GUARANTEE, NOTE_NO_CLASS, NOTE_NO_FEATURES, Repair, attribute_labels
from .text import to_csv

MOVES_SHOWN = 500  # moved points listed in the HTML report; the CSV holds them all
METRIC_ORDER = ("acc", "nmi", "nmi_geometric", "ari", "balance", "entropy", "mnce", "f_beta", "cluster_balance",
                "min_cluster_ratio", "cluster_tv", "cluster_kl", "social_fairness_ratio", "silhouette_diff", "probe_acc")

_CSS = """
body{font-family:system-ui,-apple-system,'Segoe UI',Roboto,Arial,sans-serif;margin:2em auto;max-width:1100px;color:#222;
line-height:1.4;padding:0 1em}
h1{font-size:1.6em;margin-bottom:.2em}h2{font-size:1.25em;margin-top:1.8em;border-bottom:1px solid #ccc}
h3{font-size:1.05em;margin-top:1.2em}
table{border-collapse:collapse;margin:.6em 0;font-size:.9em}th,td{border:1px solid #ccc;padding:3px 7px;text-align:right}
th{background:#f3f3f3}td.l,th.l{text-align:left}td.v{white-space:nowrap}.muted{color:#666;font-size:.9em}
.caveat{background:#fff6e0;border-left:4px solid #f0a500;padding:.4em .8em;margin:.4em 0}
.warn{background:#fdecea;border-left:4px solid #d93025;padding:.4em .8em;margin:.4em 0}
code{background:#f3f3f3;padding:0 3px}
@media print{h2{page-break-after:avoid}table,svg{page-break-inside:avoid}}
"""


def _e(x) -> str:
    return html.escape(str(x))


def stacked_bars_svg(attribute: AttributeAudit, clusters: list[str]) -> str:
    """Per cluster, its group shares as one stacked bar, under the population's mix: the audit's picture in one glance."""
    labels, counts = share_bar_rows(attribute.table, clusters)
    rows = list(zip(labels, counts))
    width, left, bar_h, gap = 760, 190, 18, 6
    # The legend above the bars (the title is the page's heading, outside the figure): every name whole, wrapped over
    # as many lines as it needs, in as many columns as the longest name leaves room for.
    names = [str(g) for g in attribute.group_names]
    colours = group_colours(names)  # the one palette: each group in the colour it has on every page
    n_columns = max(1, min(4, (width - 20) // (17 + _CHAR_PX * max((len(n) for n in names), default=1) + 8)))
    column_w = (width - 20) // n_columns
    wrapped = [_wrap(n, max(4, (column_w - 25) // _CHAR_PX)) for n in names]
    line_h, legend_h, row_tops = 15, 8, []
    for start in range(0, len(names), n_columns):
        row_tops.append(legend_h)
        legend_h += 7 + line_h * max(len(w) for w in wrapped[start:start + n_columns])
    height = legend_h + len(rows) * (bar_h + gap) + 30
    parts = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" role="img" '
             f'aria-label="group shares per cluster, {_e(attribute.name)}" font-size="12" font-family="sans-serif">']
    for j, lines in enumerate(wrapped):
        x, y = 10 + (j % n_columns) * column_w, row_tops[j // n_columns] + 12
        spans = "".join(f'<tspan x="{x + 17}" dy="{0 if k == 0 else line_h}">{_e(line)}</tspan>' for k, line in enumerate(lines))
        parts.append(f'<g><title>{_e(names[j])}</title><rect x="{x}" y="{y - 10}" width="12" height="12" '
                     f'fill="{colours[j]}"/><text x="{x + 17}" y="{y}">{spans}</text></g>')
    span = width - left - 20
    population = counts[0] / counts[0].sum()
    for r, (label, row) in enumerate(rows):
        y = legend_h + 8 + r * (bar_h + gap)
        parts.append(f'<text x="{left - 6}" y="{y + 13}" text-anchor="end"'
                     f'{" font-weight=&quot;bold&quot;" if r == 0 else ""}>{_e(label)}</text>')
        total, x = row.sum(), float(left)
        for j, count in enumerate(row):
            w = span * count / total if total else 0
            if w > 0:
                parts.append(f'<rect x="{x:.1f}" y="{y}" width="{w:.1f}" height="{bar_h}" fill="{colours[j]}">'
                             f'<title>{_e(attribute.group_names[j])}: {int(count):,} ({count / total:.1%})</title></rect>')
            x += w
    # The population's cumulative shares as dashed guides: a fair cluster's boundaries line up with them. Drawn as on
    # the pages: dark dashes on a white halo, thick enough to see on a projector and across any bar colour.
    cumulative = np.cumsum(population)[:-1]
    top, bottom = legend_h + 8, legend_h + 8 + len(rows) * (bar_h + gap) - gap
    for c in cumulative:
        xg = left + span * c
        parts.append(f'<line x1="{xg:.1f}" y1="{top}" x2="{xg:.1f}" y2="{bottom}" stroke="#fff" stroke-opacity="0.85" '
                     'stroke-width="6"/>')
        parts.append(f'<line x1="{xg:.1f}" y1="{top}" x2="{xg:.1f}" y2="{bottom}" stroke="#111" stroke-dasharray="8,5" '
                     'stroke-width="2.5"/>')
    parts.append(f'<text x="{left}" y="{height - 6}" class="muted">share of the cluster (0 to 100 %); dashed lines: the '
                 'population\'s mix</text></svg>')
    return "".join(parts)


_CHAR_PX = 7  # about the width of one character at 12 px sans-serif


def _wrap(text: str, width: int) -> list[str]:
    """text cut into lines of at most `width` characters, at spaces where there are some; nothing is dropped."""
    lines, line = [], ""
    for word in text.split(" "):
        while len(word) > width:  # a word longer than a line: cut it
            if line:
                lines.append(line)
                line = ""
            lines.append(word[:width])
            word = word[width:]
        candidate = f"{line} {word}" if line else word
        if len(candidate) > width and line:
            lines.append(line)
            candidate = word
        line = candidate
    return lines + [line] if line or not lines else lines


def _count_table_html(attribute: AttributeAudit, clusters: list[str]) -> str:
    table = attribute.table
    head = "".join(f"<th>{_e(g)}</th>" for g in attribute.group_names)
    rows = []
    for i, c in enumerate(clusters):
        total = table[i].sum()
        cells = "".join(f"<td>{int(v):,} <span class='muted'>({v / total:.0%})</span></td>" if total else "<td>0</td>"
                        for v in table[i])
        mark = " ← sets Balance" if c == attribute.balance_cluster else ""
        rows.append(f"<tr><td class='l'>{_e(c)}{mark}</td>{cells}<td>{int(total):,}</td></tr>")
    totals = table.sum(0)
    rows.append("<tr><th class='l'>all</th>" + "".join(f"<th>{int(v):,} ({v / totals.sum():.0%})</th>" for v in totals)
                + f"<th>{int(totals.sum()):,}</th></tr>")
    return f"<table><tr><th class='l'>cluster</th>{head}<th>n</th></tr>{''.join(rows)}</table>"


def _metric_rows(estimates: dict[str, Estimate]) -> str:
    rows = []
    for key in [k for k in METRIC_ORDER if k in estimates] + [k for k in estimates if k not in METRIC_ORDER]:
        e = estimates[key]
        d = M.METRIC_DEFINITIONS.get(key, {})
        better = {True: "higher is better", False: "lower is better"}.get(d.get("higher_is_better"), "")
        sample = f"<br><span class='muted'>{_e(e.sample_text())}</span>" if e.n_used is not None else ""
        rows.append(f"<tr><td class='l'><b>{_e(d.get('label', key))}</b></td><td class='v'>{_e(e.text())}{sample}</td>"
                    f"<td class='l'>{_e(e.baseline_text())}</td>"
                    f"<td class='l muted'>{_e(d.get('definition', ''))}; range {_e(d.get('range', ''))}; {better}</td></tr>")
    return ("<table><tr><th class='l'>metric</th><th>value [interval]</th><th class='l'>compare with</th>"
            "<th class='l'>exact definition</th></tr>" + "".join(rows) + "</table>")


def _per_group_html(attribute: AttributeAudit) -> str:
    labels = {"entropy": "H(C | G=g), nats", "cluster_tv": "TV(P(C|g), P(C))", "cluster_kl": "KL(P(C|g) || P(C))",
              "social_fairness_distance": "mean distance to assigned centre", "silhouette": "mean silhouette"}
    head = "".join(f"<th>{_e(g)}</th>" for g in attribute.group_names)
    rows = "".join(f"<tr><td class='l'>{_e(labels.get(k, k))}</td>" + "".join(f"<td>{v:.3f}</td>" for v in values) + "</tr>"
                   for k, values in attribute.per_group.items())
    counts = "".join(f"<td>{c:,}</td>" for c in attribute.group_counts)
    return f"<table><tr><th class='l'>per group</th>{head}</tr><tr><td class='l'>samples</td>{counts}</tr>{rows}</table>"


def run_caveats(run, epoch: int | None) -> list[str]:
    """What a reader must know about where a run's numbers come from."""
    if run is None:
        return []
    out = []
    if run.status != "finished":
        out.append(f"This run ended {run.status}" + (f" ({run.error})" if run.error else "")
                   + f": its numbers come from its last saved evaluation, at epoch {epoch}, not from a finished training.")
    return out


def build_report(result: AuditResult, *, title: str, provenance: dict | None = None, run=None, epoch: int | None = None,
                 versions: dict | None = None) -> str:
    """The whole report as one HTML string."""
    created = time.strftime("%Y-%m-%d %H:%M:%S")
    parts = [_head(title),
             f"<h1>{_e(title)}</h1><p class='muted'>Fair Clustering Lab audit report, made {created}. "
             f"{result.n:,} samples in {len(result.clusters)} clusters; "
             f"{len([a for a in result.attributes if not a.is_intersection])} sensitive attribute(s).</p>",
             _read_first(result, run, epoch), "<h2>Data and provenance</h2>", _pairs_table(provenance or {}),
             _audit_sections(result, level=2), "<h2>Configuration and environment</h2>",
             _pairs_table(_config_rows(result, run, epoch, versions)), _definitions(result), "</body></html>"]
    return "".join(parts)


def _head(title: str) -> str:
    return f"<!DOCTYPE html><html lang='en'><head><meta charset='utf-8'><title>{_e(title)}</title><style>{_CSS}</style></head><body>"


def _read_first(result: AuditResult, run, epoch: int | None, level: int = 2) -> str:
    caveats = run_caveats(run, epoch) + result.caveats
    if not (caveats or result.warnings):
        return ""
    return (f"<h{level}>Read first</h{level}>" + "".join(f"<div class='warn'>{_e(w)}</div>" for w in result.warnings)
            + "".join(f"<div class='caveat'>{_e(c)}</div>" for c in caveats))


def _pairs_table(rows: dict) -> str:
    return "<table>" + "".join(
        f"<tr><td class='l'>{_e(key)}</td><td class='l'>{_e(json.dumps(value) if isinstance(value, (dict, list)) else value)}</td></tr>"
        for key, value in rows.items()) + "</table>"


def _audit_sections(result: AuditResult, *, level: int) -> str:
    """The audit's settings, quality and every attribute's sections, headings from h{level}."""
    h, sub = f"h{level}", f"h{level + 1}"
    s = result.settings
    parts = [f"<p class='muted'>Intervals: {s['confidence']:.0%} {_e(s['interval'])}, from "
             f"{s['resamples']:,} resamples of the rows (seed {s['seed']}); the probe's is a Wilson score interval "
             "over its held-out samples. 'Compare with' gives the value a reader should hold each number against: "
             f"the mean over {s['random_draws']} random assignments with the same cluster sizes, blind to the "
             "groups and the classes (what chance alone gives). Every number uses all rows unless it says "
             "'on … rows (a subsample)'.</p>"]
    if result.quality:
        parts.append(f"<{h}>Cluster quality against the class column</{h}>" + _metric_rows(result.quality))
    for attribute in result.attributes:
        kind = "intersection of " + ", ".join(attribute.columns) if attribute.is_intersection else "sensitive attribute"
        parts.append(f"<{h}>{_e(attribute.name)} <span class='muted'>({_e(kind)})</span></{h}>")
        parts.append(f"<p>Groups: " + ", ".join(f"{_e(g)} ({c:,})" for g, c in zip(attribute.group_names, attribute.group_counts))
                     + f". Best Balance this group mix allows (ceiling): <b>{attribute.ceiling:.3f}</b>. "
                     f"Cluster that sets Balance: <b>{_e(attribute.balance_cluster)}</b>.</p>")
        parts.append(stacked_bars_svg(attribute, result.clusters))
        parts.append(f"<{sub}>Metrics</{sub}>" + _metric_rows(attribute.metrics))
        parts.append(f"<{sub}>Cluster × group counts (row shares)</{sub}>" + _count_table_html(attribute, result.clusters))
        parts.append(f"<{sub}>Per group</{sub}>" + _per_group_html(attribute))
        if attribute.empty_combinations:
            parts.append("<p class='muted'>Combinations with no sample: " + _e(", ".join(attribute.empty_combinations[:50])) + "</p>")
    return "".join(parts)


def _config_rows(result: AuditResult, run, epoch: int | None, versions: dict | None) -> dict:
    rows = {}
    if run is not None:
        rows = {"run": run.id, "method": run.method, "dataset": run.dataset, "status": run.status, "seed": run.seed,
                "device": run.device, "torch threads": run.environment.get("torch_threads"),
                "hyperparameters": run.hparams, "dataset options": run.config.get("dataset_options"),
                "epoch audited": epoch, "library versions": run.environment.get("versions"),
                "python": run.environment.get("python"), "platform": run.environment.get("platform")}
    if versions:
        rows["audit library versions"] = versions
    rows["audit settings"] = result.settings
    return rows


def _definitions(*results: AuditResult) -> str:
    keys = []
    for result in results:
        keys += [k for k in metric_keys(result) if k not in keys]
    rows = "".join(f"<tr><td class='l'><b>{_e(d['label'])}</b></td><td class='l'>{_e(d['definition'])}</td></tr>"
                   for d in (M.METRIC_DEFINITIONS.get(k) for k in keys) if d)
    return f"<h2>Definitions</h2><table>{rows}</table>"


def report_json(result: AuditResult, *, provenance: dict | None = None, run=None, epoch: int | None = None) -> str:
    payload = result.to_dict()
    payload["provenance"] = provenance or {}
    payload["caveats"] = run_caveats(run, epoch) + payload["caveats"]
    if run is not None:
        payload["run"] = {"id": run.id, "method": run.method, "dataset": run.dataset, "status": run.status, "seed": run.seed,
                          "device": run.device, "epoch": epoch, "config": run.config, "environment": run.environment}
    return json.dumps(payload, indent=1, default=lambda o: o.tolist() if isinstance(o, np.ndarray) else str(o))


def assignments_csv(arrays: dict, result: AuditResult, group_columns: dict[str, list[str]] | None = None) -> str:
    """One row per audited sample: its row id, cluster and (where saved) class and sensitive values, as CSV text in
    which no cell starts a spreadsheet formula (text.to_csv)."""
    frame = pd.DataFrame({"row_id": arrays.get("row_id", np.arange(len(arrays["assignment"]))),
                          "cluster": np.asarray(result.clusters, dtype=object)[_positions(saved_cluster_ids(arrays), result.clusters)]})
    for name, values in (group_columns or {}).items():
        frame[name] = values
    return to_csv(frame)  # cells a spreadsheet would run as formulas are neutralised


def _positions(assignment: np.ndarray, clusters: list[str]) -> np.ndarray:
    """Saved assignments hold cluster ids; the audit names them in sorted order (labels read exactly, as it does)."""
    codes, labels = cluster_codes(np.asarray(assignment), "cluster")
    index = {c: i for i, c in enumerate(clusters)}
    return np.asarray([index[label] for label in labels], dtype=np.int64)[codes]


def figures_page(title: str, intro_html: str, figures: dict) -> str:
    """Figures as one interactive HTML page that opens offline (plotly.js inline once)."""
    import plotly.io as pio

    parts = [f"<h1>{_e(title)}</h1>", intro_html]
    for i, fig in enumerate(figures.values()):
        parts.append(pio.to_html(fig, full_html=False, include_plotlyjs=i == 0))
    return (f"<!doctype html><html lang='en'><head><meta charset='utf-8'><title>{_e(title)}</title>"
            f"<style>{_CSS}</style></head><body>" + "\n".join(parts) + "</body></html>")


def sweep_report(sweep, frame: pd.DataFrame, figures: dict | None = None) -> str:
    """A sweep as one offline HTML page: what was swept, every run's settings and final metrics, and its figures."""
    from .sweeps import SweepSpec, sweep_figures

    spec = SweepSpec.from_dict(sweep.spec)
    axes = (" × ".join(f"{a.name} ({a.grid}: {a.values or [a.low, a.high, a.count]})" for a in spec.axes)
            or "the methods, each at its own settings")
    where = sweep.address or "a local Ray on the driver's machine"
    intro = (f"<p class='muted'>Sweep {_e(sweep.id)} ({_e(sweep.status)}), {sweep.n_trials} trials on {_e(where)}, made "
             f"{time.strftime('%Y-%m-%d %H:%M', time.localtime(sweep.created))}.</p>"
             f"<p>{_e(', '.join(spec.method_ids))} on {_e(spec.dataset)}, schedule {_e(spec.preset)}; swept: {_e(axes)}; "
             f"{spec.seeds} seed(s) from {spec.first_seed}; fixed: {_e(json.dumps(spec.fixed) if spec.fixed else 'nothing')}. "
             "Curves: the mean over seeds of each run's final metrics (finished runs only), the band as labelled.</p>"
             + frame.to_html(index=False, float_format=lambda v: f"{v:.4f}", na_rep="", border=0))
    return figures_page(spec.title or f"Sweep of {spec.method}", intro,
                        figures if figures is not None else sweep_figures(sweep, frame))


def repair_report(repair: Repair, *, title: str, provenance: dict | None = None, original_run=None,
                  epoch: int | None = None, repaired_run=None, versions: dict | None = None) -> str:
    """A repair as one HTML page: the bounds, the moves, the price and every metric before and after, then both
    clusterings' whole audits."""
    created = time.strftime("%Y-%m-%d %H:%M:%S")
    original_id = original_run.id if original_run is not None else "not recorded"
    repaired_id = repaired_run.id if repaired_run is not None else "not recorded"
    b = repair.bounds
    price = (f"Σ distance to the centres {repair.cost_before:.6g} before, {repair.cost_after:.6g} after: "
             f"<b>ratio {repair.cost_ratio:.3f}</b> ({_e(DISTANCE)})" if repair.cost_before is not None
             else _e(NOTE_NO_FEATURES))
    comparison = repair.comparison()
    rows = "".join(f"<tr><td class='l'>{_e(r.part)}</td><td class='l'>{_e(r.metric)}</td><td class='v'>{_e(r.before)}</td>"
                   f"<td class='v'>{_e(r.after)}</td><td>{_e(r.change)}</td><td class='l'>{_e(r.better)}</td></tr>"
                   for r in comparison.itertuples())
    moves = repair.moves()
    shown = moves.head(MOVES_SHOWN)
    move_rows = "".join("<tr>" + "".join(f"<td class='l'>{_e(v)}</td>" for v in row) + "</tr>"
                        for row in shown.itertuples(index=False))
    bound_rows = "".join(f"<tr><td class='l'>{_e(g)}</td><td>{r:.3f}</td><td>{lo:.3f}</td><td>{hi:.3f}</td><td class='l'>"
                         f"{'by hand' if g in b.by_hand else f'δ = {b.delta:g}'}</td></tr>"
                         for g, r, lo, hi in zip(b.groups, b.population, b.lower, b.upper))
    parts = [
        _head(title), f"<h1>{_e(title)}</h1>",
        f"<p class='muted'>Fair Clustering Lab repair report, made {created}. Original run <b>{_e(original_id)}</b>, "
        f"repaired run <b>{_e(repaired_id)}</b>; {repair.original.n:,} samples in {len(repair.original.clusters)} "
        "clusters.</p>",
        f"<h2>The repair</h2><p>For <b>{_e(b.attribute)}</b>, {_e(COSTS[repair.cost])}. {_e(GUARANTEE)}</p>",
        f"<p><b>{repair.n_moved:,}</b> of {repair.original.n:,} points moved ({repair.n_moved / repair.original.n:.1%}). "
        f"Price of fairness: {price}.</p>",
        "<h3>Bounds on each group's share of every cluster</h3><table><tr><th class='l'>group</th><th>share of the data"
        f"</th><th>lower</th><th>upper</th><th class='l'>set</th></tr>{bound_rows}</table>",
        "<h3>Every metric before and after</h3><table><tr><th class='l'>attribute</th><th class='l'>metric</th>"
        "<th>before [interval]</th><th>after [interval]</th><th>change</th><th class='l'>better</th></tr>"
        f"{rows}</table>" + ("" if repair.original.quality else f"<p class='muted'>{_e(NOTE_NO_CLASS)}</p>"),
        f"<h3>Points moved</h3><p class='muted'>{len(moves):,} rows"
        + (f"; the first {MOVES_SHOWN:,} shown, all in the assignments CSV" if len(moves) > MOVES_SHOWN else "")
        + "</p><table><tr>" + "".join(f"<th class='l'>{_e(c)}</th>" for c in moves.columns) + f"</tr>{move_rows}</table>",
        "<h3>Provenance of the repair</h3>", _pairs_table(repair.provenance(original_id)),
        "<h2>Data and provenance</h2>", _pairs_table(provenance or {}),
        f"<h2>Original clustering (run {_e(original_id)})</h2>", _read_first(repair.original, original_run, epoch, level=3),
        _audit_sections(repair.original, level=3),
        f"<h2>Repaired clustering (run {_e(repaired_id)})</h2>", _read_first(repair.repaired, None, None, level=3),
        _audit_sections(repair.repaired, level=3),
        "<h2>Configuration and environment</h2>", _pairs_table(_config_rows(repair.original, original_run, epoch, versions)),
        _definitions(repair.original, repair.repaired), "</body></html>"]
    return "".join(parts)


def repair_json(repair: Repair, *, provenance: dict | None = None, original_run=None, repaired_run=None) -> str:
    """The repair's numbers: its provenance, bounds and moves, and both audits whole."""
    payload = {"repair": repair.provenance(original_run.id if original_run is not None else None),
               "repaired_run": repaired_run.id if repaired_run is not None else None,
               "comparison": repair.comparison().to_dict(orient="records"),
               "moves": repair.moves().to_dict(orient="records"),
               "original": json.loads(report_json(repair.original, provenance=provenance, run=original_run, epoch=0)),
               "repaired": json.loads(report_json(repair.repaired, provenance=provenance, run=repaired_run, epoch=0))}
    return json.dumps(payload, indent=1, default=lambda o: o.tolist() if isinstance(o, np.ndarray) else
                      o.item() if isinstance(o, np.generic) else str(o))


def repair_assignments_csv(repair: Repair) -> str:
    """One row per sample: its row id, its group for the attribute repaired, its original and its repaired cluster,
    and whether it moved (text.to_csv: no cell starts a spreadsheet formula)."""
    codes, names = cluster_codes(repair.prepared.assignment, "cluster")
    new_codes, _ = cluster_codes(repair.assignment, "cluster")
    names = np.asarray(names, dtype=object)
    frame = pd.DataFrame({"row_id": repair.prepared.row_id,
                          repair.bounds.attribute: attribute_labels(repair.prepared, repair.bounds.attribute),
                          "cluster": names[codes], "repaired_cluster": names[new_codes], "moved": repair.moved})
    return to_csv(frame)


def moves_csv(repair: Repair) -> str:
    """The moved points only: row id, group, original and repaired cluster."""
    return to_csv(repair.moves())
