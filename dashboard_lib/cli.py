"""Headless use of the same registries and run store: python -m dashboard_lib {datasets, methods, train, sweep, runs, audit, upload}."""
from __future__ import annotations

import argparse
import json
import os
import sys
import textwrap
from pathlib import Path

from . import data as datasets
from . import methods
from .data import tables, upload
from .jobs import JobRegistry, RunConfig, preflight, training_threads
from .outputs import check_outputs, out_dir_outputs, write_atomic
from .params import parse_assignments
from .settings import store_dir
from .store import RunStore, StoreDamaged
from .text import to_csv

FINAL_METRIC_KEYS = ("acc", "nmi", "ari", "balance", "entropy", "mnce", "f_beta")
SEED_MAX = 2**32 - 1  # numpy's legacy seeding and scikit-learn's random_state take no more
THREADS_MAX = 1024
SEEDS_MAX = 10_000  # seeds per grid point
AUDIT_OUTPUTS = {"--report": "audit.html", "--report-json": "audit.json", "--assignments": "assignments.csv"}

ERR_SEED = "a seed is a whole number from 0 to {max:,} (2**32 − 1), got {value!r}"
ERR_WHOLE = "a whole number from {low:,} to {high:,}, got {value!r}"
ERR_CONFIDENCE = "confidence must be a number strictly between 0 and 1 (e.g. 0.95), got {value!r}"
ERR_RECORD = ("could not record the audit in the run store {store} ({reason}); the run is kept as failed. Free space "
              "there, or add --no-store")
ERR_REPAIR_OPTIONS = "--bounds, --repair-cost and --repair-for go with --repair: add --repair, or leave them out"
ERR_AXIS_COUNT = "--axis {text!r}: COUNT {count:,} is more than the {max:,} trials a sweep can start"
ERR_COMPARE_SETTINGS = ("a preset that compares methods trains each at its own settings: --set and --variant change one "
                        "method's, so give --method with them (a sweep of that method)")
ERR_SEED_RANGE = "--first-seed {first:,} with --seeds {seeds:,} goes past the largest seed, {max:,} (2**32 − 1)"


class CLIError(Exception):
    """A user error: printed as one line, exit status 2."""


class _Parser(argparse.ArgumentParser):
    """argparse's parser, but a mistake in the arguments is one line (error: …), not the usage and the error."""

    def error(self, message: str):
        raise CLIError(" ".join(message.split()))


def _whole(low: int, high: int):
    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(ERR_WHOLE.format(low=low, high=high, value=text)) from None
        if not low <= value <= high:
            raise argparse.ArgumentTypeError(ERR_WHOLE.format(low=low, high=high, value=text))
        return value
    parse.__name__ = "whole number"  # what argparse names the type in its own messages
    return parse


def _seed(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        value = None
    if value is None or not 0 <= value <= SEED_MAX:
        raise argparse.ArgumentTypeError(ERR_SEED.format(max=SEED_MAX, value=text))
    return value


def _confidence(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        value = None
    if value is None or not 0 < value < 1:  # NaN fails this too
        raise argparse.ArgumentTypeError(ERR_CONFIDENCE.format(value=text))
    return value


def _parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="python -m dashboard_lib", description="Fair Clustering Lab, headless.")
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("datasets", help="list the datasets and their options")
    p.add_argument("--json", action="store_true")
    p.add_argument("--data-dir", help="folder searched first for downloaded dataset files")

    p = sub.add_parser("upload", help="save a CSV, Parquet or NPZ table as a dataset (dataset id 'upload'), or delete one")
    p.add_argument("path", nargs="?", help="the table file")
    p.add_argument("--features", nargs="+", metavar="COLUMN",
                   help="feature columns (default: every column but the labels, ids, constants, mixed columns and leaks)")
    p.add_argument("--encode", nargs="+", metavar="COLUMN=ENCODING", default=[],
                   help="numeric, one-hot or ordinal per column (default: numbers numeric, text one-hot)")
    p.add_argument("--order", nargs="+", metavar="COLUMN=LOW|…|HIGH", default=[],
                   help="an ordinal column's values, lowest first, separated by '|' (default: numeric, else alphabetical)")
    p.add_argument("--missing", choices=tables.MISSING_CHOICES, default="refuse",
                   help="rows with a missing value: refuse the file (default), drop them, or impute the features "
                        "(median / most frequent; rows missing the group or class are dropped)")
    p.add_argument("--sensitive", metavar="COLUMN", help="the sensitive attribute (2 or more groups)")
    p.add_argument("--class", dest="class_column", metavar="COLUMN", help="optional class column, for ACC/NMI")
    p.add_argument("--name", help="name to save it under (letters, digits, - _ .)")
    p.add_argument("--delete", metavar="NAME", help="delete the saved upload NAME (its runs are kept unless --with-runs)")
    p.add_argument("--with-runs", action="store_true", help="with --delete: also delete the runs trained on it")
    p.add_argument("--replace", action="store_true", help="replace an upload of the same name")
    p.add_argument("--json", action="store_true")

    p = sub.add_parser("audit", help="audit a clustering made elsewhere (a table with a cluster column), or a run (--run)")
    p.add_argument("table", nargs="?", help="CSV, Parquet or NPZ table, one row per clustered sample")
    p.add_argument("--run", help="audit this run of the store instead of a table")
    p.add_argument("--clusters", metavar="COLUMN", help="the column holding each row's cluster id")
    p.add_argument("--sensitive", nargs="+", metavar="COLUMN", help="one or more sensitive columns (their intersection too)")
    p.add_argument("--class", dest="class_column", metavar="COLUMN", help="optional class column, for ACC/NMI/ARI")
    group = p.add_mutually_exclusive_group()
    group.add_argument("--embedding", nargs="+", metavar="COLUMN", help="embedding columns (social fairness, silhouette, probe)")
    group.add_argument("--embedding-file", metavar="FILE", help="the embedding as a separate CSV/Parquet/NPZ with the same rows")
    p.add_argument("--id", dest="id_column", metavar="COLUMN", help="row-id column (unique), kept with the assignments")
    p.add_argument("--name", help="name of the external run in the store (default: the file's name)")
    p.add_argument("--merge-near-duplicates", action="store_true",
                   help="merge sensitive and class values that differ only in spaces, case or Unicode form (the audit "
                        "warns of them otherwise); what was merged is recorded")
    p.add_argument("--resamples", type=_whole(0, 100_000), default=1000, help="bootstrap resamples (default 1000)")
    p.add_argument("--confidence", type=_confidence, default=0.95, help="interval coverage (default 0.95)")
    p.add_argument("--seed", type=_seed, default=0, help="seed of the bootstrap and the random baselines")
    p.add_argument("--report", metavar="OUT.html", help="write the HTML report here (only this file)")
    p.add_argument("--report-json", metavar="OUT.json", help="write the whole audit as JSON here")
    p.add_argument("--assignments", metavar="OUT.csv", help="write each row's id and cluster as CSV here")
    p.add_argument("--out-dir", metavar="DIR", help="write audit.html, audit.json and assignments.csv into DIR (created if "
                                                    "missing); a file named by its own flag goes there instead")
    p.add_argument("--force", action="store_true", help="replace output files that already exist (never an input)")
    p.add_argument("--no-store", action="store_true", help="do not record the clustering as a run")
    p.add_argument("--json", action="store_true", help="print the whole audit as JSON")
    p.add_argument("--repair", action="store_true",
                   help="also repair the clustering to the nearest fair one (exact LP, cluster sizes kept), audit it, "
                        "and record it as a run of its own; the reports then hold both clusterings")
    p.add_argument("--bounds", metavar="DELTA|GROUP=LOW:HIGH,…",
                   help="with --repair: each group's share of every cluster within [(1 − δ) r, r / (1 − δ)], r its "
                        "share of the data (default δ = 0.2), or GROUP=LOW:HIGH shares by hand (the other groups "
                        "from δ), e.g. 0.1 or F=0.3:0.7,M=0.3:0.7 or 0.1,F=0.3:0.7")
    p.add_argument("--repair-cost", choices=["moves", "distance"],
                   help="with --repair: the fewest points moved (default), or the least added distance to the "
                        "clusters' centres (needs --embedding or --embedding-file, or a run with an embedding)")
    p.add_argument("--repair-for", metavar="ATTRIBUTE",
                   help="with --repair: the sensitive column to repair for, or the intersection of all of them, "
                        "named as the audit names it (A × B); default: the first sensitive column")

    p = sub.add_parser("methods", help="list the methods and their hyperparameters")
    p.add_argument("--json", action="store_true")

    p = sub.add_parser("store", help="check the run store, or recover the readable runs of a damaged one")
    p.add_argument("action", choices=["check", "recover"])
    p.add_argument("--json", action="store_true")

    p = sub.add_parser("serve", help="start the app (streamlit run app.py [ARGS…]), refused on a network address "
                                     "without FCLAB_PASSWORD", add_help=False)
    p.add_argument("streamlit_args", nargs=argparse.REMAINDER, help="streamlit run's options, e.g. --server.port 8502")

    p = sub.add_parser("runs", help="list the runs in the store")
    p.add_argument("--json", action="store_true")

    p = sub.add_parser("train", help="train a method on a dataset and record the run")
    p.add_argument("--dataset", default=datasets.DEFAULT_DATASET)
    p.add_argument("--data", action="append", metavar="NAME=VALUE", help="a dataset option (repeatable)")
    p.add_argument("--method", default=methods.DEFAULT_METHOD)
    p.add_argument("--set", action="append", metavar="NAME=VALUE", help="a hyperparameter (repeatable)")
    p.add_argument("--epochs", type=int, help="shorthand for --set epochs=N")
    p.add_argument("--preset", default="quick", choices=list(methods.PRESETS),
                   help="schedule: quick (the default, as on the Train page: a demo in minutes on a CPU) or paper (the "
                        "declared defaults, for reproductions); --set wins")
    p.add_argument("--variant", metavar="NAME",
                   help="a named reading of the method, e.g. \"public code\" (see `methods`); it sets settings over the "
                        "schedule's budget, --set wins; default: the method's first (its declared defaults)")
    p.add_argument("--seed", type=_seed, default=0)
    p.add_argument("--device", default="auto", choices=["auto", "cpu", "cuda", "mps"])
    p.add_argument("--threads", type=_whole(1, THREADS_MAX), help="torch CPU threads (default: the app's, all cores but one)")
    p.add_argument("--data-dir", help="folder searched first for downloaded dataset files")
    p.add_argument("--json", action="store_true", help="print one JSON object with the run's id, device, time and metrics")

    p = sub.add_parser("sweep", help="train a grid of one or two hyperparameters × seeds on Ray, each trial a run")
    p.add_argument("--preset", dest="sweep_preset", metavar="NAME",
                   help="start from a paper's analysis (see --list-presets); the other flags change it")
    p.add_argument("--list-presets", action="store_true", help="list the ready sweeps and exit")
    p.add_argument("--dataset")
    p.add_argument("--data", action="append", metavar="NAME=VALUE", help="a dataset option (repeatable)")
    p.add_argument("--method")
    p.add_argument("--axis", action="append", metavar="NAME=GRID",
                   help="a swept hyperparameter, once or twice: NAME=v1,v2,… or NAME=linear:LOW:HIGH:COUNT, "
                        "NAME=log:LOW:HIGH:COUNT, NAME=random:LOW:HIGH:COUNT[:SEED]")
    p.add_argument("--seeds", type=_whole(1, SEEDS_MAX), help="seeds per grid point (default 1; a preset's own otherwise)")
    p.add_argument("--first-seed", type=_seed, default=0)
    p.add_argument("--schedule", choices=list(methods.PRESETS), help="every trial's schedule preset (default quick)")
    p.add_argument("--variant", metavar="NAME", help="every trial's variant of the method, e.g. \"public code\"")
    p.add_argument("--set", action="append", metavar="NAME=VALUE", help="a fixed hyperparameter (repeatable)")
    p.add_argument("--device", choices=["auto", "cpu", "cuda", "mps"])
    p.add_argument("--cpus-per-trial", type=float, help="CPUs each trial reserves on Ray (default 1)")
    p.add_argument("--gpus-per-trial", type=float, help="GPUs each trial reserves; 0.5 shares one GPU between two (default 0)")
    p.add_argument("--address", help="an existing Ray cluster (ray://… or HOST:PORT); default: a local Ray on this machine")
    p.add_argument("--data-dir", help="folder searched first for downloaded dataset files (each node: its own)")
    p.add_argument("--dry-run", action="store_true", help="print the trials and the time estimate, start nothing")
    p.add_argument("--csv", metavar="OUT.csv", help="write one row per run (settings and final metrics) here at the end")
    p.add_argument("--report", metavar="OUT.html", help="write the sweep's figures as one offline HTML page at the end")
    p.add_argument("--force", action="store_true", help="replace --csv and --report files that already exist")
    p.add_argument("--json", action="store_true", help="print one JSON object with the sweep's id, status and runs")
    return parser


def _list_datasets(args) -> None:
    rows = [{"id": c["id"], "name": c["name"], "size": c["size"], "summary": c["summary"], "available_offline": c["available"],
             "missing": c["missing"], "options": c["options"]} for c in datasets.dataset_catalog(args.data_dir)]
    if args.json:
        print(json.dumps(rows, indent=2))
        return
    for row in rows:
        mark = "yes" if row["available_offline"] else f"no ({row['missing'] or 'download or data folder'})"
        print(f"{row['id']:<26}{row['name']}\n{'':<26}{row['size']}; available now: {mark}")
        print(textwrap.fill(row["summary"], width=120, initial_indent=" " * 26, subsequent_indent=" " * 26))


def _upload(args) -> None:
    if args.delete:
        runs = upload.delete_upload(args.delete, RunStore(store_dir()), with_runs=args.with_runs)
        print(f"deleted upload '{args.delete}'; its {len(runs)} run(s) " + ("deleted too" if args.with_runs else "kept"))
        return
    missing = [flag for flag, value in (("TABLE", args.path), ("--sensitive", args.sensitive), ("--name", args.name))
               if not value]
    if missing:
        raise CLIError(f"upload needs {', '.join(missing)} (or --delete NAME)")
    table = tables.read_table(Path(args.path))
    features = args.features
    if not features:
        notes = tables.column_notes(table, args.sensitive, args.class_column)
        features = [c for c in table.columns if c not in notes]
        for column, why in notes.items():
            if column not in (args.sensitive, args.class_column):
                print(f"left out {column!r}: {why} (name it in --features to keep it)", file=sys.stderr)
    meta = upload.build_upload(table, features, args.sensitive, args.class_column, name=args.name,
                               filename=Path(args.path).name, overwrite=args.replace,
                               encodings=dict(_pairs(args.encode, "--encode")),
                               orders={c: v.split("|") for c, v in _pairs(args.order, "--order")}, missing=args.missing)
    print(json.dumps(meta) if args.json else
          f"saved upload '{meta['name']}': {upload.saved_text(meta)}; "
          f"train on it with --dataset upload --data name={meta['name']} (runs list it as {upload.label(meta['name'])})")


def _pairs(items: list[str], flag: str) -> list[tuple[str, str]]:
    """COLUMN=VALUE arguments as pairs (a column name may itself hold '=': the last one splits)."""
    pairs = []
    for item in items:
        if "=" not in item:
            raise CLIError(f"{flag} takes COLUMN=VALUE, got {item!r}")
        column, value = item.rsplit("=", 1)
        pairs.append((column, value))
    return pairs


def _audit(args) -> None:
    from . import external, repairing, report
    from .jobs import library_versions

    store = RunStore(store_dir())
    if args.run:
        if args.table:
            raise CLIError("give either a table or --run, not both")
    else:
        if not args.table:
            raise CLIError("give the table to audit (or --run RUN_ID)")
        if not args.clusters or not args.sensitive:
            raise CLIError("--clusters COLUMN and --sensitive COLUMN [COLUMN ...] are required with a table")
        tables.check_file(args.table)
        if args.embedding_file:
            tables.check_file(args.embedding_file)
    if not args.repair and (args.bounds or args.repair_cost or args.repair_for):
        raise CLIError(ERR_REPAIR_OPTIONS)
    delta, shares = repairing.parse_bounds(args.bounds) if args.bounds else (repairing.DEFAULT_DELTA, {})
    # Every output is checked before any work: a refusal costs nothing and records nothing.
    named = {"--report": args.report, "--report-json": args.report_json, "--assignments": args.assignments}
    outputs = check_outputs({**out_dir_outputs(args.out_dir, AUDIT_OUTPUTS),
                             **{flag: path for flag, path in named.items() if path}},
                            inputs={"table": args.table, "--embedding-file": args.embedding_file},
                            force=args.force, store=store.root)
    if args.run:
        try:
            run = store.get_run(args.run)
        except KeyError as exc:
            raise CLIError(str(exc.args[0])) from None
        prepared = external.stored_table(store, args.run)
        result = external.audit_table(prepared, resamples=args.resamples, confidence=args.confidence, seed=args.seed)
        epoch = external.evaluation_epoch(store, args.run)
        provenance = {"run": run.id, "dataset": run.dataset, "data": (run.dataset_info or {}).get("source")}
        arrays, run_id, title = store.load_arrays(run.id, epoch), run.id, f"Audit of run {run.id}"
        name = (run.dataset_info or {}).get("name") or run.id
    else:
        table, provenance = external.read_audit_file(Path(args.table))
        embedding = None
        if args.embedding_file:
            embedding, _ = external.read_audit_file(Path(args.embedding_file))
        prepared = external.prepare(table, clusters=args.clusters, sensitive=args.sensitive, class_column=args.class_column,
                                    embedding_columns=args.embedding, embedding=embedding, id_column=args.id_column,
                                    provenance=provenance, merge_near_duplicates=args.merge_near_duplicates)
        result = external.audit_table(prepared, resamples=args.resamples, confidence=args.confidence, seed=args.seed)
        run = run_id = epoch = None
        name = args.name or Path(args.table).stem
        arrays = {"assignment": prepared.assignment.to_numpy(), "row_id": prepared.row_id}
        title = f"Audit of {provenance['file']}"
    # The repair before any run is recorded: bounds it cannot meet record nothing.
    repair = repaired_run = None
    if args.repair:
        repair = repairing.repair_clustering(prepared, result, attribute=args.repair_for, delta=delta, shares=shares,
                                             cost=args.repair_cost or "moves")
    if not args.run and not args.no_store:
        try:
            run_id = external.record_external(store, prepared, result, name)
        except OSError as exc:  # a full disk or a quota: record_external has marked the run failed
            raise CLIError(ERR_RECORD.format(reason=exc.strerror or type(exc).__name__, store=store.root)) from None
        run, epoch = store.get_run(run_id), 0
    if repair is not None and not args.no_store:
        try:
            repaired_run = store.get_run(repairing.record_repair(store, repair, name=name, original_run=run_id,
                                                                 dataset=run.dataset))
        except OSError as exc:
            raise CLIError(ERR_RECORD.format(reason=exc.strerror or type(exc).__name__, store=store.root)) from None
    if repair is None:
        contents = {
            "--report": lambda: report.build_report(result, title=title, provenance=provenance, run=run, epoch=epoch,
                                                    versions=library_versions()),
            "--report-json": lambda: report.report_json(result, provenance=provenance, run=run, epoch=epoch),
            "--assignments": lambda: report.assignments_csv(arrays, result),
        }
    else:
        contents = {
            "--report": lambda: report.repair_report(repair, title=f"Repair: {title}", provenance=provenance,
                                                     original_run=run, epoch=epoch, repaired_run=repaired_run,
                                                     versions=library_versions()),
            "--report-json": lambda: report.repair_json(repair, provenance=provenance, original_run=run,
                                                        repaired_run=repaired_run),
            "--assignments": lambda: report.repair_assignments_csv(repair),
        }
    for flag, path in outputs.items():
        write_atomic(path, contents[flag](), flag=flag, replace=args.force)
    repaired_id = repaired_run.id if repaired_run is not None else None
    if args.json:
        extra = {} if repair is None else {"repair": json.loads(report.repair_json(
            repair, provenance=provenance, original_run=run, repaired_run=repaired_run)), "repaired_run_id": repaired_id}
        print(json.dumps({"run_id": run_id, **result.to_dict(), **extra}, default=str))
        return
    for line in audit_summary(result):
        print(line)
    if run_id and not args.run:
        print(f"recorded as run {run_id}")
    if repair is not None:
        for line in repair.summary_lines(repaired_id):
            print(line)
    for flag, path in outputs.items():
        print(f"{flag[2:].replace('-', ' ')}: {path}")


def audit_summary(result) -> list[str]:
    """The audit as lines of text: each metric with its interval and what to compare it with."""
    from .metrics import METRIC_DEFINITIONS

    s = result.settings
    lines = [f"{result.n:,} samples, {len(result.clusters)} clusters",
             f"intervals: {s['confidence']:.0%} {s['interval']}; {s['resamples']:,} resamples",
             f"compare with: the mean of {s['random_draws']} random assignments with the same cluster sizes"]
    sections = ([("quality against the class column", result.quality)] if result.quality else []) + \
        [(f"{a.name}: groups {dict(zip(a.group_names, a.group_counts))}, Balance ceiling {a.ceiling:.3f}, "
          f"Balance set by cluster {a.balance_cluster}", a.metrics) for a in result.attributes]
    for heading, estimates in sections:
        lines.append(heading)
        rows = [[f"  {METRIC_DEFINITIONS.get(k, {}).get('label', k)}", e.text(), e.baseline_text(), e.sample_text()]
                for k, e in estimates.items()]
        lines += aligned_columns(rows)
    lines += [f"note: {c}" for c in result.warnings + result.caveats]
    return lines


def _list_methods(args) -> None:
    rows = [cls.describe() for cls in methods.REGISTRY.values()]
    if args.json:
        print(json.dumps(rows, indent=2))
        return
    for row in rows:
        print(f"{row['id']:<12} {row['name']}: {row['summary']}")
        for p in row["params"]:
            symbol = f" ({p['symbol']})" if p["symbol"] else ""
            print(f"{'':<14}{p['name']}{symbol} = {p['default']}  range {p['range']}  {p['help']}")
        for name, variant in row["variants"].items():
            values = ", ".join(f"{k}={v}" for k, v in variant["values"].items()) or "the declared defaults"
            print(f"{'':<14}variant \"{name}\": {values}  ({variant['source']})")


def _store(args) -> int:
    from .store import check_store, recover_store

    root = store_dir()
    report = check_store(root) if args.action == "check" else recover_store(root)
    if args.json:
        print(json.dumps(report, indent=2))
    elif args.action == "check":
        print(f"{report['path']}: " + ("no store yet" if not report["exists"] else "sound" if report.get("ok") else "DAMAGED"))
        if report["exists"]:
            print(f"  integrity: {'; '.join(report['integrity'][:5]) or 'unreadable'}")
            print(f"  schema version {report['schema_version']}; runs readable: {report['runs_readable']}"
                  + (f"; runs with unreadable series: {len(report['runs_with_unreadable_series'])}"
                     if report["runs_with_unreadable_series"] else ""))
            for problem in report["problems"][:10]:
                print(f"  {problem}")
            dead, stray = report["runs_of_dead_processes"], report["stray_temp_files"]
            for run in dead:
                print(f"  run {run['id']}: recorded as running, but its process (pid {run['pid']}) has died")
            for path in stray:
                print(f"  stray temporary file: {path}")
            if not report.get("ok"):
                print("  to keep what is readable: python -m dashboard_lib store recover")
            elif dead or stray:
                print("  to mark those runs interrupted and delete those files: python -m dashboard_lib store recover")
    else:
        if report["sound"]:
            print(f"{root / 'runs.sqlite'}: sound, nothing to copy")
        else:
            c = report["copied"]
            print(f"recovered {c['runs']} run(s), {c['scalars']:,} series points, {c['evaluations']} evaluations into "
                  f"{root / 'runs.sqlite'}; the damaged file is kept as {report['damaged_file']}")
            if report["runs_with_lost_series"]:
                print(f"  {len(report['runs_with_lost_series'])} run(s) lost part of their series: "
                      + ", ".join(report["runs_with_lost_series"][:10]))
        for run_id in report["runs_marked_interrupted"]:
            print(f"  marked run {run_id} interrupted: its process had died")
        for path in report["stray_temp_files_removed"]:
            print(f"  deleted stray temporary file {path}")
    return 0 if args.action == "recover" or report.get("ok") or not report["exists"] else 1


def _list_runs(args) -> None:
    runs = RunStore(store_dir()).list_runs()
    if args.json:
        print(json.dumps([{"run_id": r.id, "dataset": r.dataset_label, "method": r.method, "status": r.status,
                           "device": r.device, "seconds": r.seconds, **metrics_fields(r), "error": r.error} for r in runs],
                         indent=2))
        return
    rows = [[r.id, r.status, r.method, r.dataset_label, metrics_text(r)] for r in runs]
    for line in aligned_columns([["run", "status", "method", "dataset", "metrics"], *rows] if rows else []):
        print(line)


def metrics_fields(run) -> dict:
    """A run's metrics for --json: whether they are final and, when not, the evaluation epoch they come from."""
    return {"metrics": run.metrics, "metrics_final": run.metrics_final, "metrics_epoch": run.kept_from_epoch}


def not_final_note(run) -> str:
    """'' for a finished run; else where its kept metrics come from."""
    if run.metrics_final or not run.metrics:
        return ""
    epoch = run.kept_from_epoch
    return f"(not final: evaluation {'at epoch ' + str(epoch) if epoch is not None else 'before it ended'})"


def metrics_text(run) -> str:
    values = " ".join(f"{k}={run.metrics[k]:.3f}" for k in FINAL_METRIC_KEYS if isinstance(run.metrics.get(k), float))
    return f"{not_final_note(run)} {values}".strip() if values else ""


def aligned_columns(rows: list[list[str]]) -> list[str]:
    """Rows of cells as lines, each column as wide as its widest cell (the last left ragged)."""
    if not rows:
        return []
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]) - 1)]
    return ["  ".join([*(cell.ljust(w) for cell, w in zip(row, widths)), row[-1]]).rstrip() for row in rows]


def _train(args) -> int:
    cls = methods.get_method(args.method)
    hparams = {**cls.settings(args.variant, args.preset, args.dataset), **parse_assignments(args.set)}
    if args.epochs is not None:
        if not any(p.name == "epochs" for p in cls.params):
            raise CLIError(f"method {args.method} does not train in epochs; its hyperparameters: "
                           + ", ".join(p.name for p in cls.params))
        hparams["epochs"] = args.epochs
    config = RunConfig(dataset=args.dataset, method=args.method, dataset_options=parse_assignments(args.data),
                       hparams=hparams, seed=args.seed, device=args.device, data_dir=args.data_dir)
    # The app's thread count by default: the same seed, data, settings, device and threads give the same numbers.
    registry = JobRegistry(RunStore(store_dir()), threads=args.threads or training_threads())
    ready = preflight(config)  # a setting the data cannot take (K > N, a missing upload): exit 2 before any run is recorded
    run_id = registry.start(ready)
    shown = ""
    try:
        while not registry.wait(run_id, timeout=1.0):
            run = registry.store.get_run(run_id)
            line = f"{run_id}: {run.stage} {run.progress:.0%}"
            if line != shown and not args.json:
                print(line, file=sys.stderr)
                shown = line
    except KeyboardInterrupt:
        registry.stop(run_id)
        registry.wait(run_id)
    run = registry.store.get_run(run_id)
    if args.json:
        print(json.dumps({"run_id": run.id, "dataset": run.dataset_label, "method": run.method, "device": run.device,
                          "seconds": run.seconds, "status": run.status, "error": run.error, **metrics_fields(run)}))
    else:
        print(f"{run.id}: {run.status} in {run.seconds:.1f} s on {run.device}")
        note = not_final_note(run)
        if note:
            print(f"  metrics {note}")
        for key, value in methods.REGISTRY.get(run.method, methods.Method).shown_metrics(run.metrics).items():
            if isinstance(value, float):  # as every page shows the run (--json keeps the whole record)
                print(f"  {key:<16} {value:.4f}")
    if run.status != "finished":
        print(f"run {run.id} {run.status}: {run.error or 'stopped by the user'}", file=sys.stderr)
        return 1
    return 0


def parse_axis(text: str):
    """NAME=v1,v2,… or NAME=linear|log|random:LOW:HIGH:COUNT[:SEED] as a sweeps.Axis."""
    from .sweeps import GRIDS, MAX_TRIALS, Axis

    name, sep, grid = text.partition("=")
    if not sep or not name or not grid:
        raise CLIError(f"--axis wants NAME=v1,v2,… or NAME=linear:LOW:HIGH:COUNT, got {text!r}")
    kind, _, rest = grid.partition(":")
    if kind in GRIDS[1:]:
        parts = rest.split(":")
        if len(parts) not in (3, 4):
            raise CLIError(f"--axis {name}={kind}: wants {kind}:LOW:HIGH:COUNT" + ("[:SEED]" if kind == "random" else ""))
        try:
            low, high, count = float(parts[0]), float(parts[1]), int(parts[2])
            seed = int(parts[3]) if len(parts) == 4 else 0
        except ValueError:
            raise CLIError(f"--axis {text!r}: LOW and HIGH must be numbers, COUNT and SEED whole numbers") from None
        if count > MAX_TRIALS:  # before a grid of that many values is built
            raise CLIError(ERR_AXIS_COUNT.format(text=text, count=count, max=MAX_TRIALS))
        return Axis(name, grid=kind, low=low, high=high, count=count, seed=seed)
    return Axis(name, values=[v.strip() for v in grid.split(",") if v.strip()])  # typed by the declaration


def sweep_spec(args):
    """The sweep the flags describe: a preset (if named) with the flags' changes, or the flags alone."""
    from .sweeps import SWEEP_PRESETS, SweepSpec

    if args.sweep_preset:
        if args.sweep_preset not in SWEEP_PRESETS:
            raise CLIError(f"unknown sweep preset {args.sweep_preset!r}; presets: " + "; ".join(SWEEP_PRESETS))
        spec = SweepSpec.from_dict(SWEEP_PRESETS[args.sweep_preset].spec.to_dict())
    else:
        if not args.method or not args.axis:
            raise CLIError("sweep needs --method and --axis (or --preset NAME; see --list-presets)")
        spec = SweepSpec(dataset=datasets.DEFAULT_DATASET, method=args.method, axes=[])
    if args.method and (args.method != spec.method or spec.compare):  # a sweep of that one method
        spec.method, spec.fixed, spec.variant, spec.compare = args.method, {}, None, []
    if spec.compare and (args.set or args.variant):
        raise CLIError(ERR_COMPARE_SETTINGS)
    if args.axis:
        spec.axes = [parse_axis(a) for a in args.axis]
    for flag, attribute in (("dataset", "dataset"), ("seeds", "seeds"), ("schedule", "preset"), ("variant", "variant"), ("device", "device"),
                            ("cpus_per_trial", "cpus_per_trial"), ("gpus_per_trial", "gpus_per_trial"), ("data_dir", "data_dir")):
        if getattr(args, flag) is not None:
            setattr(spec, attribute, getattr(args, flag))
    spec.first_seed = args.first_seed
    spec.fixed = {**spec.fixed, **parse_assignments(args.set)}
    spec.dataset_options = {**spec.dataset_options, **parse_assignments(args.data)}
    return spec


def _sweep(args) -> int:
    from . import report, sweeps

    if args.list_presets:
        for title, preset in sweeps.SWEEP_PRESETS.items():
            axes = " × ".join(f"{a.name} ∈ {a.values}" for a in preset.spec.axes) or "each at its own settings"
            print(f"{title}\n    {', '.join(preset.spec.method_ids)} on {preset.spec.dataset}, {axes}, "
                  f"{preset.spec.seeds} seed(s), fixed {preset.spec.fixed or '-'}\n    {preset.description}")
        return 0
    spec = sweep_spec(args)
    if spec.first_seed + spec.seeds - 1 > SEED_MAX:
        raise CLIError(ERR_SEED_RANGE.format(first=spec.first_seed, seeds=spec.seeds, max=SEED_MAX))
    configs = spec.trials()
    registry = JobRegistry(RunStore(store_dir()))
    outputs = check_outputs({"--csv": args.csv, "--report": args.report}, force=args.force, store=registry.store.root)
    guess = sweeps.estimate_time(registry.store, configs, sweeps.slots({"CPU": os.cpu_count() or 1}, spec) if not args.address else 1)
    when = (f"{'at least' if guess.missing else 'about'} {guess.total_seconds / 60:.1f} min with {guess.slots} "
            f"trial(s) at once ({guess.basis}" + (f"; {', '.join(guess.missing)} not counted: no finished run like "
                                                  "theirs yet" if guess.missing else "") + ")" if guess
            else "no estimate yet: no finished run with this schedule in the store")
    print(f"{len(configs)} trials of {', '.join(spec.method_ids)} on {spec.dataset}: {when}", file=sys.stderr)
    if args.dry_run:
        for config in configs:
            print(json.dumps({**({"method": config.method} if spec.compare else {}), "seed": config.seed,
                              **{a.name: config.hparams[a.name] for a in spec.axes}}))
        return 0
    sweeps.connect(args.address)  # from the main thread, so Ray can install its signal handlers
    runner = sweeps.SweepRunner(registry)
    sweep_id = runner.start(spec, address=args.address)
    shown = ""
    try:
        while not runner.wait(sweep_id, timeout=1.0):
            runs = registry.store.list_runs(sweep_id=sweep_id)
            done = sum(r.status != "running" for r in runs)
            line = f"{sweep_id}: {done}/{len(configs)} trials done, {len(runs) - done} training"
            if line != shown and not args.json:
                print(line, file=sys.stderr)
                shown = line
    except KeyboardInterrupt:
        runner.stop(sweep_id)
        runner.wait(sweep_id)
    sweep = registry.store.get_sweep(sweep_id)
    frame = sweeps.sweep_frame(registry.store, sweep_id)
    if "--csv" in outputs:
        write_atomic(outputs["--csv"], to_csv(frame), flag="--csv", replace=args.force)
    if "--report" in outputs:
        write_atomic(outputs["--report"], report.sweep_report(sweep, frame), flag="--report", replace=args.force)
    if args.json:
        print(json.dumps({"sweep_id": sweep.id, "status": sweep.status, "error": sweep.error, "n_trials": sweep.n_trials,
                          "runs": json.loads(frame.to_json(orient="records"))}))
    else:
        print(f"{sweep.id}: {sweep.status}" + (f" ({sweep.error})" if sweep.error else ""))
        counts = frame["status"].value_counts().to_dict() if not frame.empty else {}
        print("  runs: " + (", ".join(f"{n} {s}" for s, n in counts.items()) or "none"))
    return 0 if sweep.status == "finished" else 1


APP_SCRIPT = Path(__file__).resolve().parents[1] / "app.py"


def serve(streamlit_args: list[str]) -> int:
    """`streamlit run app.py ARGS…` in place of this process, unless the address it would bind (found as Streamlit
    finds it) is not loopback and no password is set: then one line and exit 2, before anything is bound."""
    from . import security

    address = security.streamlit_address(streamlit_args, script_dir=APP_SCRIPT.parent)
    refused = security.refusal(address, security.configured_password())
    if refused:
        print(f"error: {refused}", file=sys.stderr)
        return 2
    sys.stdout.flush()
    os.execv(sys.executable, [sys.executable, "-m", "streamlit", "run", str(APP_SCRIPT), *streamlit_args])


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] == ["serve"]:  # every other argument is streamlit's (argparse would take --help and --server.* as ours)
        return serve(argv[1:])
    try:
        args = _parser().parse_args(argv)
    except CLIError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    try:
        return _dispatch(args)
    except StoreDamaged as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    except BrokenPipeError:  # the reader went away (`... | head`): stop quietly, as a pipeline's commands do
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())  # so the interpreter's final flush does not raise again
        return 141  # 128 + SIGPIPE, what the shell reports for a command its reader closed on
    except OSError as exc:  # after BrokenPipeError, which is one
        if not _names_a_user_path(exc, args):
            raise  # not about a file the user named: a bug, or the machine, and its traceback is the report
        print(f"error: {exc.filename}: {exc.strerror or type(exc).__name__}", file=sys.stderr)
        return 2


USER_PATHS = ("table", "path", "embedding_file", "report", "report_json", "assignments", "out_dir", "csv", "data_dir")


def _names_a_user_path(exc: OSError, args) -> bool:
    """Whether the OSError is about a path the user gave (or a folder on the way to one, or a file inside one)."""
    given = [Path(getattr(args, a)).absolute() for a in USER_PATHS if getattr(args, a, None)]
    failed = [Path(os.fsdecode(f)).absolute() for f in (exc.filename, exc.filename2) if f is not None]
    return any(f == g or f in g.parents or g in f.parents for f in failed for g in given)


def _dispatch(args) -> int:
    try:
        if args.command == "datasets":
            _list_datasets(args)
        elif args.command == "methods":
            _list_methods(args)
        elif args.command == "upload":
            _upload(args)
        elif args.command == "runs":
            _list_runs(args)
        elif args.command == "audit":
            _audit(args)
        elif args.command == "store":
            return _store(args)
        elif args.command == "train":
            return _train(args)
        elif args.command == "sweep":
            return _sweep(args)
    except (ValueError, CLIError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    return 0
