"""MTFL faces: 2,000 images, gender as the class, glasses as the group (DFC §5; FCMI supplementary Table 1).

DFC: "We randomly sample 1,000 images with and without glasses". FCMI's public code (DataSetMaster/MTFL.py)
makes that draw concrete, and this module repeats it: the lines of testing.txt then training.txt; for each
glasses value (without, with) and each gender (female, male), np.random.seed(9116)-style shuffles of the
matching images, keeping 346 female and 654 male per glasses group. With the same seed and the original
files the same 2,000 images are chosen.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from ..params import Param
from .archive import Archive
from .base import BiasedDataset, DatasetInfo, DatasetSpec
from .download import RemoteFile, all_local, fetch_all, missing_message, resolve_data_dir
from .sources import load_rgb, n_param, seed_param, subset_index

DATASET_ID = "mtfl"
MTFL_ZIP = RemoteFile("MTFL.zip", "http://mmlab.ie.cuhk.edu.hk/projects/TCDCN/data/MTFL.zip", "mtfl")
EXTRACTED = "MTFL"
PER_GENDER = (346, 654)  # female, male per glasses group (FCMI's code)
FCMI_SEED = 9116
ERR_LINE = "MTFL: cannot read line {number} of {file}: {line!r} (expected an image path and 14 numbers)"


def _source(data_dir: Path | None) -> Path | None:
    data_dir = resolve_data_dir(data_dir)
    if data_dir is not None:
        for folder in (data_dir / "mtfl" / EXTRACTED, data_dir / EXTRACTED):
            if (folder / "training.txt").is_file():
                return folder
    return None


def parse_annotations(text: str, file: str) -> list[tuple[str, int, int]]:
    """(image path, gender, glasses) per line: gender 1 = male, 2 = female; glasses 1 = wearing, 2 = not (MTFL readme)."""
    out = []
    for number, line in enumerate(text.splitlines(), 1):
        items = line.strip().split()
        if not items:
            continue
        if len(items) != 15:
            raise ValueError(ERR_LINE.format(number=number, file=file, line=line))
        out.append((items[0].replace("\\", "/"), int(items[11]), int(items[13])))
    return out


def fcmi_selection(gender: np.ndarray, glasses: np.ndarray, seed: int) -> np.ndarray:
    """FCMI's draw: for glasses g in (0 without, 1 with), gender y in (0 female, 1 male), shuffle and keep PER_GENDER[y]."""
    rng = np.random.RandomState(seed)  # legacy generator, as np.random.seed + np.random.shuffle in FCMI's code
    chosen = []
    for g in np.unique(glasses):
        for y in np.unique(gender):
            members = np.flatnonzero((glasses == g) & (gender == y))
            order = np.arange(len(members))
            rng.shuffle(order)
            chosen.append(members[order[:PER_GENDER[y]]])
    return np.concatenate(chosen)


def load(options: dict, data_dir: Path | None) -> BiasedDataset:
    """The 2,000-face MTFL subset; y = gender (0 female, 1 male), g = glasses (0 without, 1 with)."""
    path = _source(data_dir) or fetch_all("MTFL", [MTFL_ZIP], data_dir)[MTFL_ZIP.name]
    archive = Archive(path)
    rows = []
    for name in ("testing.txt", "training.txt"):  # FCMI concatenates test then train
        member = archive.find(name)
        base = member[: -len(name)]
        rows += [(base + p, ge, gl) for p, ge, gl in parse_annotations(archive.read(member).decode("utf-8", "replace"), name)]
    gender = np.array([1 if ge == 1 else 0 for _, ge, _ in rows], dtype=np.int64)
    glasses = np.array([1 if gl == 1 else 0 for _, _, gl in rows], dtype=np.int64)
    chosen = fcmi_selection(gender, glasses, options["seed"])
    chosen = chosen[subset_index(options["n"], options["seed"], gender[chosen], glasses[chosen])]
    size = options["image_size"]
    wanted = {rows[i][0]: pos for pos, i in enumerate(chosen)}
    X = np.zeros((len(chosen), size, size, 3), dtype=np.uint8)
    for name, data in archive.read_many(wanted):
        X[wanted[name]] = load_rgb(data, size)
    counts = np.bincount(glasses[chosen] * 2 + gender[chosen], minlength=4).tolist()
    subset = f"; stratified subset of {len(chosen):,} by gender × glasses" if options["n"] else ""
    return BiasedDataset(
        id=DATASET_ID, X=torch.from_numpy(X).permute(0, 3, 1, 2).float().div_(255.0).contiguous(),
        y=gender[chosen], g=glasses[chosen], group_names=["without glasses", "with glasses"],
        class_names=["female", "male"], n_clusters=2, options=dict(options),
        info=DatasetInfo(
            name="MTFL (Multi-Task Facial Landmark), gender × glasses", source=f"{MTFL_ZIP.url} (read from {path.name})",
            licence="research use only (CUHK Multimedia Lab)",
            citation="Zhang, Luo, Loy & Tang 2014, Facial landmark detection by deep multi-task learning (ECCV); "
                     "DFC §5; FCMI public code DataSetMaster/MTFL.py",
            built=(f"FCMI's draw with seed {options['seed']}: {len(rows):,} annotated faces (testing.txt then training.txt); "
                   f"per glasses group up to {PER_GENDER[0]} female and {PER_GENDER[1]} male, shuffled with "
                   f"numpy RandomState; counts (without: female, male; with: female, male) = {counts}; images RGB, "
                   f"shorter side resized to {size}·256/224, centre-cropped to {size}×{size}, scaled to [0, 1]; "
                   f"y = gender (0 female, 1 male), g = glasses (0 without, 1 with){subset}"),
        ),
    )


def available(data_dir: Path | None) -> bool:
    return _source(data_dir) is not None or all_local([MTFL_ZIP], data_dir)


def needs(data_dir: Path | None) -> str:
    if available(data_dir):
        return ""
    return missing_message("MTFL", [MTFL_ZIP], data_dir, "not in the data folder or the download cache") + \
        f"\n(or unpack it there as mtfl/{EXTRACTED}/training.txt, testing.txt, AFLW/, lfw_5590/, net_7876/)"


SPEC = DatasetSpec(
    id=DATASET_ID, name="MTFL (gender × glasses)",
    summary="2,000 MTFL face photos, 1,000 with and 1,000 without glasses; class = gender, group = glasses (DFC, FCMI).",
    load=load,
    options=(
        n_param("2,000"), seed_param(FCMI_SEED, "the 2,000-face draw (9116 as in FCMI's code) and the subset"),
        Param("image_size", 64, kind="int", low=16, high=256,
              help="Side of the square images (DFC/FCMI use 224 for an ImageNet ResNet-50; 64 keeps CPU runs small).",
              source="DFC §5 (224)"),
    ),
    available=available, needs=needs, offline=False, downloads=lambda options: True,
    size="2,000 images, 2 classes (gender), 2 groups (1,000 / 1,000)",
)
