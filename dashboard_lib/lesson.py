"""The class lesson "See the bias": k-means and a fair method on the built-in digits, told in a few steps.

The lesson's two runs are ordinary runs of the store: the lesson reuses finished (or still training) runs with the
very same configuration, so a teacher who prepared the lesson before class, or opens it a second time, waits for
nothing. Their configurations are fixed here, so the lesson tells the same story every time (bench/bench_lesson.py
times it from the click to the last step).
"""
from __future__ import annotations

from dataclasses import asdict, dataclass

from .data import DEFAULT_DATASET
from .jobs import JobRegistry, RunConfig
from .methods import get_method
from .store import RunStore

UNFAIR, FAIR = "unfair", "fair"
FAIR_METHOD = "fcmi"  # a fair method whose quick demo ends fair within minutes (timings: docs/RUNS_NOTES.md)
SEED = 0


@dataclass(frozen=True)
class Step:
    title: str
    needs: tuple[str, ...]  # the lesson runs (UNFAIR, FAIR) whose final evaluation the step shows


STEPS = (
    Step("k-means splits the digits by source", (UNFAIR,)),
    Step("Balance: the least mixed cluster decides", (UNFAIR,)),
    Step("A fair method mixes every cluster", (UNFAIR, FAIR)),
    Step("The embedding, coloured by source", (UNFAIR, FAIR)),
    Step("Can the source still be read from the embedding?", (UNFAIR, FAIR)),
)


def lesson_configs() -> dict[str, RunConfig]:
    """The two runs the lesson shows: plain k-means, and the fair method on its quick preset (same data, same seed)."""
    return {
        UNFAIR: RunConfig(dataset=DEFAULT_DATASET, method="kmeans", seed=SEED),
        FAIR: RunConfig(dataset=DEFAULT_DATASET, method=FAIR_METHOD, hparams=get_method(FAIR_METHOD).preset("quick"),
                        seed=SEED),
    }


def _same(run_config: dict, wanted: RunConfig) -> bool:
    return all(run_config.get(key) == value for key, value in asdict(wanted).items() if key not in ("device", "data_dir"))


def find_runs(store: RunStore, registry: JobRegistry) -> dict[str, str]:
    """The lesson's runs already in the store: for each role, the newest finished run of its configuration, else
    one this process is still training. Roles with neither are left out."""
    found = {}
    for role, config in lesson_configs().items():
        wanted = config.resolved()
        candidates = [r for r in store.list_runs(dataset=wanted.dataset, method=wanted.method) if _same(r.config, wanted)]
        finished = [r for r in candidates if r.status == "finished"]
        running = [r for r in candidates if r.status == "running" and registry.is_running(r.id)]
        if finished or running:
            found[role] = (finished or running)[0].id
    return found


def start_missing(store: RunStore, registry: JobRegistry) -> dict[str, str]:
    """find_runs, then start the roles it did not find; returns every role's run. The fair run waits for k-means:
    alone on the CPU k-means ends in seconds (the first steps can be shown), sharing it, in close to a minute."""
    runs = find_runs(store, registry)
    configs = lesson_configs()
    if UNFAIR not in runs:
        runs[UNFAIR] = registry.start(configs[UNFAIR])
    if FAIR not in runs:
        unfair = runs[UNFAIR]
        runs[FAIR] = registry.start(configs[FAIR], after=unfair if registry.is_running(unfair) else None)
    return runs
