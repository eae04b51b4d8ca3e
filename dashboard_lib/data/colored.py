"""Colored MNIST and Colored Fashion-MNIST, built as Inv-SENnet §4.1 describes (after IRM's Colored MNIST).

Binary label y' = [class ≥ 5], flipped with probability label_flip (0.25). In the biased "train" split the
colour is y' flipped with probability color_flip (e = 0.4); in the unbiased "test" split it is drawn at
random, independent of y'. The sensitive attribute g is the colour; the clustering target y is the original
class (target=digit, the paper's setting) or y' (target=binary, the ClusterFix setting: with label_flip=0
and color_flip=0.01, 99% of training images are bias-aligned). Every sample also carries the attributes
"digit", "binary_label", "color" and "bias_aligned" (colour agrees with y').
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from sklearn.model_selection import train_test_split

from ..params import Param
from . import sources
from .base import BiasedDataset, DatasetInfo, DatasetSpec
from .download import missing_message
from .mnist_family import DIGITS, npz_available, npz_needs
from .sources import Images, MNIST_SOURCE_PARAM, n_param, seed_param, subset_index

INV_SENNET_CITATION = ("Singh, Singh, Masoomi, Imbiriba, Learned-Miller & Erdoğmuş, Inv-SENnet: Invariant Self Expression "
                       "Network for Clustering under Biased Data, §4.1 Setting 1; Arjovsky, Bottou, Gulrajani & Lopez-Paz "
                       "2019, Invariant Risk Minimization (arXiv:1907.02893)")
PALETTES = {  # (name, RGB) for y' = 0 and y' = 1, as in the paper's Fig. 2
    "mnist": (("red", (1.0, 0.0, 0.0)), ("green", (0.0, 1.0, 0.0))),
    "sample": (("red", (1.0, 0.0, 0.0)), ("green", (0.0, 1.0, 0.0))),
    "fashion": (("blue", (0.0, 0.0, 1.0)), ("yellow", (1.0, 1.0, 0.0))),
}
HELD_OUT = 10_000  # size of the unbiased split when the source has no test set (mnist_usps.npz)
HELD_OUT_SAMPLE = 1_000  # the same for the built-in 5,000-digit sample


def colour_labels(classes: np.ndarray, label_flip: float, color_flip: float, unbiased: np.ndarray,
                  rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """Inv-SENnet §4.1: y' = [class ≥ 5] flipped w.p. label_flip; colour = y' flipped w.p. color_flip (biased) or a fair coin (unbiased)."""
    n = len(classes)
    binary = (classes >= 5) ^ (rng.random(n) < label_flip)
    biased_colour = binary ^ (rng.random(n) < color_flip)
    random_colour = rng.random(n) < 0.5
    colour = np.where(unbiased, random_colour, biased_colour)
    return binary.astype(np.int64), colour.astype(np.int64)


def colorize(gray: np.ndarray, colour: np.ndarray, palette) -> torch.Tensor:
    """uint8 N × 28 × 28 grey images → N × 3 × 28 × 28 in [0, 1]: the grey level times the colour's RGB."""
    rgb = torch.tensor([c for _, c in palette], dtype=torch.float32)[torch.from_numpy(colour)]
    x = torch.from_numpy(gray.astype(np.float32) / 255.0).unsqueeze(1)
    return x * rgb[:, :, None, None]


def _train_test(family: str, options: dict, data_dir: Path | None, dataset: str) -> tuple[Images, Images, str]:
    if family == "fashion":
        sources.prefetch(dataset, [*sources.FASHION_TRAIN, *sources.FASHION_TEST], data_dir)
        return sources.fashion("train", data_dir, dataset), sources.fashion("test", data_dir, dataset), "the official test set"
    if family == "sample":
        return _held_out(sources.mnist_sample(), HELD_OUT_SAMPLE, options["seed"])
    if options["source"] == "official":
        sources.prefetch(dataset, [*sources.MNIST_TRAIN, *sources.MNIST_TEST], data_dir)
        return sources.mnist_train("official", data_dir, dataset), sources.mnist_test(data_dir, dataset), "the official test set"
    # mnist_usps.npz has no test images: hold out 10,000 training images.
    return _held_out(sources.mnist_train("npz", data_dir, dataset), HELD_OUT, options["seed"])


def _held_out(train: Images, size: int, seed: int) -> tuple[Images, Images, str]:
    """A source without a test set: `size` of its images held out, stratified by digit, as the unbiased split."""
    test = np.zeros(len(train.y), bool)
    test[train_test_split(np.arange(len(train.y)), test_size=size, stratify=train.y, random_state=seed)[1]] = True
    how = f"{size:,} images held out (stratified by digit, seed {seed})"
    return Images(train.x[~test], train.y[~test], train.origin), Images(train.x[test], train.y[test], train.origin), how


def _loader(family: str, dataset_id: str):
    palette = PALETTES[family]
    class_names = sources.FASHION_CLASSES if family == "fashion" else DIGITS

    def load(options: dict, data_dir: Path | None) -> BiasedDataset:
        train, test, test_from = _train_test(family, options, data_dir, dataset_id)
        classes = np.concatenate([train.y, test.y])
        split = np.repeat([0, 1], [len(train.y), len(test.y)])
        rng = np.random.default_rng(options["seed"])
        binary, colour = colour_labels(classes, options["label_flip"], options["color_flip"], split == 1, rng)
        index = subset_index(options["n"], options["seed"], split, classes, binary, colour)
        gray = np.concatenate([train.x, test.x])[index]
        binary_target = options["target"] == "binary"
        s = split[index]
        target_text = "y' (binary)" if binary_target else "the original class"
        (c0, _), (c1, _) = palette
        subset = f"; stratified subset of {len(index):,} by split × class × y' × colour" if options["n"] else ""
        return BiasedDataset(
            id=dataset_id, X=colorize(gray, colour[index], palette), y=(binary if binary_target else classes)[index],
            g=colour[index], group_names=[c0, c1],
            class_names=["y'=0 (classes 0–4)", "y'=1 (classes 5–9)"] if binary_target else class_names,
            n_clusters=2 if binary_target else 10, options=dict(options), row_id=index,
            splits={"train": np.flatnonzero(s == 0), "test": np.flatnonzero(s == 1)},
            attributes={"digit": classes[index], "binary_label": binary[index], "color": colour[index],
                        "bias_aligned": (colour == binary)[index].astype(np.int64)},
            info=DatasetInfo(
                name=SPEC_NAMES[family], source=f"{train.origin}; unbiased split from {test_from}",
                licence=sources.FASHION_LICENCE if family == "fashion" else sources.MNIST_LICENCE,
                citation=f"{INV_SENNET_CITATION}; " + (sources.FASHION_CITATION if family == "fashion" else sources.MNIST_CITATION),
                built=(f"binary label y' = [class ≥ 5] flipped with probability {options['label_flip']}; "
                       f"\"train\" split (biased, {len(train.y):,} images): colour = y' flipped with probability "
                       f"{options['color_flip']} ({c0} for y'=0, {c1} for y'=1); \"test\" split (unbiased, "
                       f"{len(test.y):,} images, {test_from}): colour drawn at random, independent of y'; "
                       f"image = grey level / 255 × the colour's RGB, 3×28×28; y = "
                       f"{target_text}; g = colour (0 {c0}, 1 {c1}); "
                       f"flips and colours drawn with numpy default_rng({options['seed']}){subset}"),
            ),
        )
    return load


SPEC_NAMES = {"mnist": "Colored MNIST", "fashion": "Colored Fashion-MNIST",
              "sample": "Colored MNIST sample (built-in, offline)"}


# The built-in sample is for the classifiers' quick demo (ERM, ClusterFix): strongly biased by default, 95% of
# training images bias-aligned, the binary label y' as target; the papers' families keep Inv-SENnet's setting.
DEMO_DEFAULTS = {"label_flip": 0.0, "color_flip": 0.05, "target": "binary"}
PAPER_DEFAULTS = {"label_flip": 0.25, "color_flip": 0.4, "target": "digit"}


def _options(family: str) -> tuple[Param, ...]:
    total = {"mnist": "60,000 (mnist_usps.npz) or 70,000 (official files)", "fashion": "70,000", "sample": "5,000"}
    defaults = DEMO_DEFAULTS if family == "sample" else PAPER_DEFAULTS
    common = (
        n_param(total[family]),
        seed_param(what="the label flips, colours, held-out split and subset"),
        Param("label_flip", defaults["label_flip"], low=0.0, high=1.0, symbol="p_y",
              help="Probability of flipping the binary label y' = [class ≥ 5].", source="Inv-SENnet §4.1 (25%)"),
        Param("color_flip", defaults["color_flip"], low=0.0, high=1.0, symbol="e",
              help="Probability that a training image's colour disagrees with y', so the colour agrees with y' on a "
                   "share 1 − e of the training images (the paper's e = 0.4: 60%; 0.05: 95% bias-aligned, as "
                   "ClusterFix-style debiasing needs). The test split's colour is always independent of y'.",
              source="Inv-SENnet §4.1 (e = 40%)"),
        Param("target", defaults["target"], kind="choice", choices=("digit", "binary"),
              help="What y is: the 10 original classes (clustering target, Inv-SENnet) or the binary label y' (ClusterFix)."),
    )
    return common + (MNIST_SOURCE_PARAM,) if family == "mnist" else common


def _fashion_needs(data_dir: Path | None) -> str:
    if sources.fashion_available(data_dir):
        return ""
    return missing_message("Fashion-MNIST", [*sources.FASHION_TRAIN, *sources.FASHION_TEST], data_dir,
                           "not in the data folder, the download cache or /usr/share/datasets/fashion-mnist "
                           "(apt-get install dataset-fashion-mnist)")


COLORED_MNIST_SPEC = DatasetSpec(
    id="colored_mnist", name="Colored MNIST",
    summary="MNIST coloured red/green from a noisy binary label, built as in Inv-SENnet §4.1: a biased train split (colour agrees with y' "
            "on a share 1 − e of it: 60% at the paper's e = 0.4) and an unbiased test split; y = digit, g = colour.",
    load=_loader("mnist", "colored_mnist"), options=_options("mnist"),
    available=npz_available, needs=npz_needs("colored_mnist"), offline=False,
    size="60,000 images 3×28×28 (50,000 biased train + 10,000 unbiased test from mnist_usps.npz; "
         "60,000 + 10,000 with source=official), 10 classes, 2 colours",
)
COLORED_FASHION_SPEC = DatasetSpec(
    id="colored_fashion_mnist", name="Colored Fashion-MNIST",
    summary="Fashion-MNIST coloured blue/yellow from a noisy binary label, built as in Inv-SENnet §4.1: biased train split and unbiased test split; "
            "y = class, g = colour.",
    load=_loader("fashion", "colored_fashion_mnist"), options=_options("fashion"),
    available=sources.fashion_available, needs=_fashion_needs, offline=False,
    size="70,000 images 3×28×28 (60,000 biased train + 10,000 unbiased test), 10 classes, 2 colours",
)
COLORED_SAMPLE_SPEC = DatasetSpec(
    id="colored_digits", name=SPEC_NAMES["sample"],
    summary="The built-in 5,000-digit MNIST sample coloured red/green as Colored MNIST is, strongly biased by default "
            "(colour agrees with the binary label y' = [digit ≥ 5] on 95% of the train split; colour independent of "
            "y' on the test split); y = y', g = colour. Ships with the install: the quick demo of ERM and ClusterFix.",
    load=_loader("sample", "colored_digits"), options=_options("sample"),
    size=f"5,000 images 3×28×28 ({5_000 - HELD_OUT_SAMPLE:,} biased train + {HELD_OUT_SAMPLE:,} unbiased test), "
         "2 classes (y') or 10 digits, 2 colours",
)
SPECS = (COLORED_MNIST_SPEC, COLORED_FASHION_SPEC)  # the built-in COLORED_SAMPLE_SPEC is listed first, with the offline data
DATASET_PALETTES = {"colored_mnist": PALETTES["mnist"], "colored_fashion_mnist": PALETTES["fashion"],
                    "colored_digits": PALETTES["sample"]}
