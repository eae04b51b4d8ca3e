"""docs/REPRODUCTIONS.md from the reproduction records: per method a section (anchor #<method id>) with the paper's
numbers beside ours, the budget, device, wall time and commit, the curve where the budget is the gap, and the note
on why the paper cannot be matched where it cannot."""
from __future__ import annotations

from dashboard_lib.methods import REGISTRY, get_method
from dashboard_lib.reproductions import Summary, label, make_command, percent, summarize

from .recipes import DATASETS, DEFAULT_DATASET, READINGS, WHY, plan

HEADER = """# Reproductions: every method against its paper

Generated from the records in `{folder}/` (one JSON file per run) by `python bench/reproduce.py --render`, and after
every run of `python bench/reproduce.py --method ID [--dataset D] [--schedule S] [--seeds 0,1]`. Do not edit by hand.

Numbers in %; ours is the mean ± sd over seeds where there are several. Schedules: *quick* is the app's quick demo,
*reduced* and *medium* shorten the papers' schedules to fit a CPU, *paper* is the papers' schedule on all the data.
Where the budget is smaller than the paper's, the paper's budget is given beside it and the curve (every evaluation
of the run) shows the trend.
"""


def curve_table(summary: Summary) -> list[str]:
    """The first seed's curve as (step, accuracy, fairness metric …) rows, or nothing if it has a single point."""
    record = summary.first
    curve, columns = record["curve"], record["columns"]["curve"]
    if summary.schedule == "paper" or len(curve) < 2:
        return []
    lines = [f"Curve (seed {record['seed']}):", "",
             f"| {record['curve_unit']} | " + " | ".join(label(c) for c in columns) + " |",
             "|---|" + "---|" * len(columns)]
    lines += [f"| {p['step']} | " + " | ".join(percent(p.get(c)) for c in columns) + " |" for p in curve]
    return lines + [""]


def group_models_table(summary: Summary) -> list[str]:
    """DFC's stage 2 (the first seed's): each group's own model against the shared k-means on that group."""
    rows = (summary.first.get("analysis") or {}).get("group_models") or []
    if not rows:
        return []
    lines = ["Each group's own model (stage 2) against the shared encoder's k-means, on that group's samples:", "",
             "| group | samples | shared k-means ACC / NMI | own model ACC / NMI | epochs (pretraining + DEC) |",
             "|---|---|---|---|---|"]
    for r in rows:
        epochs = ("released" if r.get("source") == "released" else
                  f"{r.get('pretrain_epochs', 0):g} + {r.get('dec_epochs', 0)} ({r.get('dec_stopped', '')})")
        lines.append(f"| {r['group']} | {r['samples']:,} | {percent(r.get('start_acc'))} / {percent(r.get('start_nmi'))} "
                     f"| {percent(r.get('model_acc'))} / {percent(r.get('model_nmi'))} | {epochs} |")
    return lines + [""]


def paper_budget(summary: Summary) -> str:
    """The paper schedule's size for the same method and dataset (all the data, the length settings the run lists)."""
    try:
        p = plan(summary.method, summary.dataset, "paper")
    except ValueError:  # a record of a dataset or method the recipes no longer know
        return "unknown"
    hparams = get_method(summary.method)(**p.hparams).hparams
    shown = summary.first["budget"].get("schedule") or {}
    return ", ".join(["all the data"] + [f"{k} {hparams[k]}" for k in shown if k in hparams])


def section(method: str, summaries: list[Summary]) -> list[str]:
    cls = REGISTRY[method]
    lines = [f"## {method}", "", f"**{cls.name}**: {cls.paper}", ""]
    if method in WHY:
        lines += [f"*Why it cannot be matched:* {WHY[method]}", ""]
    if not summaries:
        return lines + [f"No record yet. Make one with `{make_command(method)}` "
                        f"(dataset {DEFAULT_DATASET[method]}).", ""]
    for s in summaries:
        about = DATASETS[s.dataset].about if s.dataset in DATASETS else ""
        lines += [f"### {s.dataset}, {s.schedule} schedule", ""]
        if about:
            lines += [about + ".", ""]
        lines += ["| metric | paper | ours |", "|---|---|---|"]
        lines += [f"| {r['metric']} | {r['paper']} | {r['ours']} |" for r in s.rows()]
        lines += ["", f"Paper: {s.paper['source']}. Budget: {s.budget_text()}."
                      + (f" The paper's: {paper_budget(s)}." if s.schedule != "paper" else "")
                      + f" Device: {s.device_text()}; wall time {s.wall_text()} per run; commit {s.commit_text()}; "
                        f"{s.date_text()}.", ""]
        lines += curve_table(s)
        lines += group_models_table(s)
        reading = READINGS.get((method, s.dataset, s.schedule))
        if reading:
            lines += [f"*Reading:* {reading}", ""]
    return lines


def render(records: list[dict], folder: str = "docs/reproductions") -> str:
    """The whole document: a header, an index, then one section per method of the registry, in its order."""
    by_method = {m: summarize(records, m) for m in REGISTRY}
    lines = [HEADER.format(folder=folder), "| method | runs | datasets (schedules) |", "|---|---|---|"]
    for method, summaries in by_method.items():
        runs = sum(len(s.records) for s in summaries)
        shown = ", ".join(f"{s.dataset} ({s.schedule})" for s in summaries) or "–"
        lines.append(f"| [{method}](#{method}) | {runs} | {shown} |")
    lines.append("")
    for method, summaries in by_method.items():
        lines += section(method, summaries)
    return "\n".join(lines).rstrip() + "\n"
