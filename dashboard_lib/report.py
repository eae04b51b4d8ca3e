"""The audit report a fairness auditor hands over: one self-contained HTML file (no script, font or image fetched:
figures are inline SVG), beside a JSON of the same numbers and a CSV of the assignments keyed by row id.

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
from .plots import group_colour, share_bar_rows
from .text import to_csv
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
                     f'fill="{group_colour(j)}"/><text x="{x + 17}" y="{y}">{spans}</text></g>')
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
                parts.append(f'<rect x="{x:.1f}" y="{y}" width="{w:.1f}" height="{bar_h}" fill="{group_colour(j)}">'
                             f'<title>{_e(attribute.group_names[j])}: {int(count):,} ({count / total:.1%})</title></rect>')
            x += w
    # The population's cumulative shares as dashed guides: a fair cluster's boundaries line up with them.
    cumulative = np.cumsum(population)[:-1]
    top, bottom = legend_h + 8, legend_h + 8 + len(rows) * (bar_h + gap) - gap
    for c in cumulative:
        xg = left + span * c
        parts.append(f'<line x1="{xg:.1f}" y1="{top}" x2="{xg:.1f}" y2="{bottom}" stroke="#222" stroke-dasharray="3,3" '
                     'stroke-width="1"/>')
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
    provenance = provenance or {}
    created = time.strftime("%Y-%m-%d %H:%M:%S")
    caveats = run_caveats(run, epoch) + result.caveats
    parts = [f"<!DOCTYPE html><html lang='en'><head><meta charset='utf-8'><title>{_e(title)}</title>"
             f"<style>{_CSS}</style></head><body>",
             f"<h1>{_e(title)}</h1><p class='muted'>Fair Clustering Lab audit report, made {created}. "
             f"{result.n:,} samples in {len(result.clusters)} clusters; "
             f"{len([a for a in result.attributes if not a.is_intersection])} sensitive attribute(s).</p>"]
    if caveats or result.warnings:
        parts.append("<h2>Read first</h2>" + "".join(f"<div class='warn'>{_e(w)}</div>" for w in result.warnings)
                     + "".join(f"<div class='caveat'>{_e(c)}</div>" for c in caveats))
    parts.append("<h2>Data and provenance</h2><table>")
    for key, value in provenance.items():
        parts.append(f"<tr><td class='l'>{_e(key)}</td><td class='l'>{_e(json.dumps(value) if isinstance(value, (dict, list)) else value)}</td></tr>")
    parts.append("</table>")
    s = result.settings
    parts.append(f"<p class='muted'>Intervals: {s['confidence']:.0%} {_e(s['interval'])}, from "
                 f"{s['resamples']:,} resamples of the rows (seed {s['seed']}); the probe's is a Wilson score interval "
                 "over its held-out samples. 'Compare with' gives the value a reader should hold each number against: "
                 f"the mean over {s['random_draws']} random assignments with the same cluster sizes, blind to the "
                 "groups and the classes (what chance alone gives). Every number uses all rows unless it says "
                 "'on … rows (a subsample)'.</p>")
    if result.quality:
        parts.append("<h2>Cluster quality against the class column</h2>" + _metric_rows(result.quality))
    for attribute in result.attributes:
        kind = "intersection of " + ", ".join(attribute.columns) if attribute.is_intersection else "sensitive attribute"
        parts.append(f"<h2>{_e(attribute.name)} <span class='muted'>({_e(kind)})</span></h2>")
        parts.append(f"<p>Groups: " + ", ".join(f"{_e(g)} ({c:,})" for g, c in zip(attribute.group_names, attribute.group_counts))
                     + f". Best Balance this group mix allows (ceiling): <b>{attribute.ceiling:.3f}</b>. "
                     f"Cluster that sets Balance: <b>{_e(attribute.balance_cluster)}</b>.</p>")
        parts.append(stacked_bars_svg(attribute, result.clusters))
        parts.append("<h3>Metrics</h3>" + _metric_rows(attribute.metrics))
        parts.append("<h3>Cluster × group counts (row shares)</h3>" + _count_table_html(attribute, result.clusters))
        parts.append("<h3>Per group</h3>" + _per_group_html(attribute))
        if attribute.empty_combinations:
            parts.append("<p class='muted'>Combinations with no sample: " + _e(", ".join(attribute.empty_combinations[:50])) + "</p>")
    parts.append("<h2>Configuration and environment</h2><table>")
    config_rows = {}
    if run is not None:
        config_rows = {"run": run.id, "method": run.method, "dataset": run.dataset, "status": run.status, "seed": run.seed,
                       "device": run.device, "torch threads": run.environment.get("torch_threads"),
                       "hyperparameters": run.hparams, "dataset options": run.config.get("dataset_options"),
                       "epoch audited": epoch, "library versions": run.environment.get("versions"),
                       "python": run.environment.get("python"), "platform": run.environment.get("platform")}
    if versions:
        config_rows["audit library versions"] = versions
    config_rows["audit settings"] = result.settings
    for key, value in config_rows.items():
        parts.append(f"<tr><td class='l'>{_e(key)}</td><td class='l'>{_e(json.dumps(value) if isinstance(value, (dict, list)) else value)}</td></tr>")
    parts.append("</table><h2>Definitions</h2><table>")
    for key in metric_keys(result):
        d = M.METRIC_DEFINITIONS.get(key)
        if d:
            parts.append(f"<tr><td class='l'><b>{_e(d['label'])}</b></td><td class='l'>{_e(d['definition'])}</td></tr>")
    parts.append("</table></body></html>")
    return "".join(parts)


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
