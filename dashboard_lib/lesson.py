"""The class lesson "See the bias": k-means and a fair method on the built-in digits, told in a few steps, and an
optional last step with the classic answer, fairlets.

The lesson's runs are ordinary runs of the store: the lesson reuses finished (or still training) runs with the
very same configuration, so a teacher who prepared the lesson before class, or opens it a second time, waits for
nothing. Their configurations are fixed here, so the lesson tells the same story every time (bench/bench_lesson.py
times it from the click to the last step).

Every sentence a step says about its numbers is made here, from the numbers, by a pure function (the page only
places it): which method is more accurate or fairer, how many clusters are mixed, where Balance stands against its
ceiling. The sentences are Markdown; group names in them are escaped (text.md).
"""
from __future__ import annotations

import math
from dataclasses import asdict, dataclass

import numpy as np

from .data import DEFAULT_DATASET
from .jobs import JobRegistry, RunConfig
from .methods import get_method
from .store import RunStore
from .text import md

UNFAIR, FAIR, CLASSIC = "unfair", "fair", "classic"
FAIR_METHOD = "fcmi"  # a fair method whose quick demo ends fair within minutes (timings: docs/RUNS_NOTES.md)
CLASSIC_METHOD = "fairlets"  # the algorithm that defined Balance (Chierichetti et al. 2017): seconds on the digits
SEED = 0
# How long the lesson takes, the one figure the app states (Start page, the lesson's first page): from the click to
# the story's last step on a laptop CPU, its runs trained on the way (bench/bench_lesson.py measures it).
LENGTH_MINUTES = 3
ONE_SOURCE = 0.9  # a cluster "is one source" from this share of its largest group on (step 1)
SAME = 0.01  # two ACC or Balance values closer than this are told as "about the same"


@dataclass(frozen=True)
class Step:
    title: str
    needs: tuple[str, ...]  # the lesson runs (UNFAIR, FAIR, CLASSIC) whose final evaluation the step shows
    optional: bool = False  # after the story's end: the lesson is complete without it


STEPS = (
    Step("Does k-means split the digits by source?", (UNFAIR,)),
    Step("Balance: the least mixed cluster decides", (UNFAIR,)),
    Step("Does a fair method mix every cluster?", (UNFAIR, FAIR)),
    Step("The embedding, coloured by source", (UNFAIR, FAIR)),
    Step("Can a probe still read the source?", (UNFAIR, FAIR)),
    Step("The classic answer: fairlets", (UNFAIR, FAIR, CLASSIC), optional=True),
)
STORY_STEPS = sum(not s.optional for s in STEPS)  # the steps every class follows; the optional ones come after


def lesson_configs() -> dict[str, RunConfig]:
    """The lesson's runs: plain k-means, the fair method on its quick preset, and fairlets with their defaults (the
    smallest feasible t, the scalable decomposition, k-center), all on the same data with the same seed."""
    return {
        UNFAIR: RunConfig(dataset=DEFAULT_DATASET, method="kmeans", seed=SEED),
        FAIR: RunConfig(dataset=DEFAULT_DATASET, method=FAIR_METHOD, hparams=get_method(FAIR_METHOD).preset("quick"),
                        seed=SEED),
        CLASSIC: RunConfig(dataset=DEFAULT_DATASET, method=CLASSIC_METHOD, seed=SEED),
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
    """find_runs, then start the roles it did not find; returns every role's run. Each run waits for the one before
    it (k-means, then the fair method, then fairlets): alone on the CPU k-means ends in seconds (the first steps can
    be shown), and the optional step's run never slows the story's."""
    runs = find_runs(store, registry)
    configs = lesson_configs()
    before = None
    for role in configs:
        if role not in runs:
            runs[role] = registry.start(configs[role], after=before if before and registry.is_running(before) else None)
        before = runs[role]
    return runs


# --- The sentences: numbers in, Markdown out.

def _f(value: float) -> str:
    return f"{value:.3f}"


def _pct(share: float) -> str:
    return f"{100 * share:.0f}\u00a0%"  # a no-break space: "90" and "%" never on two lines


def possessive(name: str) -> str:
    """The possessive: k-means', FCMI's."""
    return name + ("'" if name.endswith("s") else "'s")


def accuracy_comparison(name: str, acc: float, other_name: str, other_acc: float) -> str:
    """'more accurate than k-means (ACC 0.618 against 0.437)', 'less accurate …' or 'about as accurate …' (SAME)."""
    if abs(acc - other_acc) < SAME:
        how = f"about as accurate as {other_name}"
    else:
        how = f"{'more' if acc > other_acc else 'less'} accurate than {other_name}"
    return f"{how} (ACC {_f(acc)} against {_f(other_acc)})"


def one_source_sentence(counts) -> str:
    """Step 1: how many of k-means' clusters are (almost) one source. counts: clusters × groups."""
    counts = np.asarray(counts, dtype=float)
    sizes = np.maximum(counts.sum(1), 1)
    lopsided = int((counts.max(1) >= ONE_SOURCE * sizes).sum())
    pure = int(((counts == 0).any(1) & (counts.sum(1) > 0)).sum())
    k = len(counts)
    entirely = f" ({pure} entirely)" if pure else ""
    if lopsided == 0:
        return (f"None of k-means' {k} clusters is {_pct(ONE_SOURCE)} one source: on these digits its clusters "
                "hold both sources.")
    if 2 * lopsided >= k:
        return ("k-means puts digits that look alike together, and the two sources draw digits differently: "
                f"**{lopsided} of its {k} clusters are at least {_pct(ONE_SOURCE)} one source**{entirely}.")
    return (f"k-means puts digits that look alike together: **{lopsided} of its {k} clusters are at least "
            f"{_pct(ONE_SOURCE)} one source**{entirely}; the others hold both.")


def ceiling_sentence(ratio, group_sizes, group_names) -> str:
    """Step 2: what the ceiling min_g n_g / max_g n_g bounds (the least balanced cluster, that is Balance, not each
    cluster), and how many of these clusters reach above it.

    Why it bounds the minimum: if every cluster held more than the population's share of the smallest group, the
    clusters together would hold more of it than there is."""
    ratio = np.asarray(ratio, dtype=float)
    sizes = np.asarray(group_sizes)
    small, large = int(sizes.argmin()), int(sizes.argmax())
    ceiling = sizes[small] / sizes[large]
    above = ratio > ceiling
    text = (f"The dashed *ceiling*, the whole dataset's ratio ({int(sizes[small]):,} ÷ {int(sizes[large]):,} = "
            f"{_f(ceiling)}), bounds the **least** balanced cluster, that is Balance: not every cluster can hold more "
            f"than its share of {md(group_names[small])}. ")
    if above.any():
        text += f"Single clusters can pass it: {int(above.sum())} of these {len(ratio)} bars do (up to {ratio.max():.2f})."
    else:
        text += f"None of these {len(ratio)} clusters reaches it."
    return text


def balance_caption(cluster, counts_row, group_names) -> str:
    """Steps 2, 3 and 6: the cluster that sets Balance and its group counts."""
    counts_text = ", ".join(f"{int(n):,} {md(g)}" for n, g in zip(counts_row, group_names))
    return f"Balance is set by cluster {cluster}: {counts_text}."


def mixed_sentence(name: str, counts, fair: dict, unfair: dict, ceiling: float) -> str:
    """Step 3: how many of the fair method's clusters hold both sources, its Balance and MNCE against k-means', and
    whether it is more or less accurate than k-means. fair, unfair: final metrics (acc, balance, mnce)."""
    counts = np.asarray(counts)
    k, mixed = len(counts), int((counts > 0).all(1).sum())
    if mixed == k:
        clusters = f"**All {k} of its clusters hold both sources**"
    else:
        clusters = f"**{mixed} of its {k} clusters hold both sources**"
    fairer = ("fairer than" if fair["balance"] > unfair["balance"] + SAME else
              "about as fair as" if abs(fair["balance"] - unfair["balance"]) < SAME else "less fair than")
    return (f"{clusters}: Balance **{_f(fair['balance'])}** (ceiling {_f(ceiling)}) and MNCE **{_f(fair['mnce'])}** "
            f"(1: each cluster mirrors the population), {fairer} k-means ({_f(unfair['balance'])} and "
            f"{_f(unfair['mnce'])}). It is {accuracy_comparison(name, fair['acc'], 'k-means', unfair['acc'])}.")


def layout_sentence(methods) -> str:
    """Step 4: what the scatters show, PCA or UMAP. methods: the layout method of each scatter ("umap" or "pca")."""
    methods = set(methods)
    if methods == {"umap"}:
        return "Each dot is one digit, placed by **UMAP** (similar digits sit together) and coloured by its source."
    if methods == {"pca"}:
        return ("Each dot is one digit, coloured by its source, placed by **PCA** (the two directions of greatest "
                "spread) while UMAP computes.")
    return ("Each dot is one digit, coloured by its source, placed by **UMAP** (similar digits sit together) or, "
            "where the title says so, by PCA while UMAP computes.")


def separation_sentence(name: str, unfair_probe: float, fair_probe: float, chance: float) -> str:
    """Step 4: whether the sources sit apart in each embedding, read from the bias probe (step 5) against chance."""
    apart = lambda probe: probe - chance >= 0.1  # noqa: E731  (a probe 10 points above chance tells them apart)
    unfair = ("k-means clusters the pixels, where the two sources sit apart, so its clusters follow the source"
              if apart(unfair_probe) else "k-means clusters the pixels, where the two sources overlap")
    if fair_probe < unfair_probe - SAME:
        fair = (f"{possessive(name)} embedding puts them mostly in the same islands, so its clusters can hold both"
                if not apart(fair_probe) else f"{possessive(name)} embedding brings them closer")
    else:
        fair = f"{possessive(name)} embedding keeps them as far apart"
    return f"{unfair}; {fair}."


def probe_sentence(name: str, unfair_probe: float, fair_probe: float, chance: float) -> str:
    """Step 5: how much of the source each embedding gives away, against the chance rate."""
    gap = {"k-means": unfair_probe - chance, name: fair_probe - chance}
    unfair = (f"k-means' features give the source away ({_f(unfair_probe)}, {gap['k-means']:+.3f} above chance)"
              if gap["k-means"] >= 0.1 else f"k-means' features keep little of the source ({_f(unfair_probe)})")
    if fair_probe < unfair_probe - SAME:
        amount = "almost none" if gap[name] < 0.02 else "little" if gap[name] < 0.1 else "less"
        fair = f"{possessive(name)} keep {amount} of it ({_f(fair_probe)})"
    elif fair_probe > unfair_probe + SAME:
        fair = f"{possessive(name)} keep more of it ({_f(fair_probe)})"
    else:
        fair = f"{possessive(name)} keep as much ({_f(fair_probe)})"
    return f"{unfair}; {fair}."


def conclusion(name: str, fair: dict, unfair: dict) -> str:
    """Step 5's closing line: what the two runs showed, fairness and accuracy each said the way the numbers go."""
    balance = f"Balance {_f(fair['balance'])} against {_f(unfair['balance'])}"
    if fair["balance"] > unfair["balance"] + SAME:
        mixing = f"a fair method ({name}) mixes them ({balance})"
    else:
        mixing = f"here the fair method ({name}) did not mix them better ({balance})"
    acc = f"ACC {_f(fair['acc'])} against {_f(unfair['acc'])}"
    if fair["acc"] > unfair["acc"] + SAME:
        cost = (f" and is also more accurate ({acc}): a learned embedding can group digits better than raw pixels, "
                "so here fairness cost no accuracy")
    elif fair["acc"] < unfair["acc"] - SAME:
        cost = f" at a cost in accuracy ({acc})"
    else:
        cost = f" at about the same accuracy ({acc})"
    return ("That is the story: an unconstrained clustering follows the sensitive attribute when the groups look "
            f"different; {mixing}{cost}.")


def fairlet_bound(group_sizes, t: int | None = None) -> tuple[int, float]:
    """(t, 1/t): each fairlet holds one point of the smallest group and at most t of each other, so every cluster of
    fairlets has balance ≥ 1/t (Chierichetti et al. 2017, Lemma 3). t defaults to ⌈largest / smallest group⌉, the
    smallest feasible one (the fairlets method's default)."""
    sizes = np.asarray(group_sizes)
    t = t or math.ceil(sizes.max() / sizes.min())
    return int(t), 1.0 / t


def classic_sentence(name: str, classic: dict, fair: dict, unfair: dict, ceiling: float, t: int) -> str:
    """The optional step: fairlets' Balance against the ceiling, the guarantee and the fair deep method, and what it
    costs in ACC against both other runs. classic, fair, unfair: final metrics (acc, balance)."""
    if abs(classic["balance"] - fair["balance"]) < SAME:
        versus = f"about {possessive(name)} {_f(fair['balance'])}"
    else:
        versus = f"{'above' if classic['balance'] > fair['balance'] else 'below'} {possessive(name)} {_f(fair['balance'])}"
    share = f"{_pct(classic['balance'] / ceiling)} of the ceiling {_f(ceiling)}" if ceiling > 0 else "with a ceiling of 0"
    text = (f"Fairlets reach Balance **{_f(classic['balance'])}**, {share} and {versus} (guaranteed: at least "
            f"1/{t} = {_f(1 / t)}). ")
    others = ((name, fair["acc"]), ("k-means", unfair["acc"]))
    below = [f"{possessive(who)} {_f(acc)}" for who, acc in others if classic["acc"] < acc - SAME]
    if below:
        text += f"The price is accuracy: ACC **{_f(classic['acc'])}**, below {' and '.join(below)}"
        if len(below) == len(others):
            text += (": fairlets guarantee the mix, not the classes (a fairlet ties digits close in pixels, whatever "
                     "their class)")
        return text + "."
    return (text + f"Here it costs no accuracy: ACC **{_f(classic['acc'])}** ({name} {_f(fair['acc'])}, "
            f"k-means {_f(unfair['acc'])}).")
