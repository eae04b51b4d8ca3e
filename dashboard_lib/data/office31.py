"""Office-31, Amazon vs Webcam (2,817 + 795 = 3,612 images, 31 classes; group = domain), as DFC and FCMI use it.

Two representations: the images themselves (resized as DFC/FCMI's ImageNet pipeline, at image_size), or
ResNet-50 features the user provides (DFC and FCMI cluster ImageNet ResNet-50 features; no pretrained
weights ship with this app), as office31/office31_resnet50.npz with arrays amazon_x, amazon_y, webcam_x,
webcam_y (rows = images, y = class index in the alphabetical order of CLASSES).
"""
from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import torch

from ..params import Param
from .archive import Archive
from .base import BiasedDataset, DatasetInfo, DatasetSpec
from .download import RemoteFile, all_local, fetch_all, missing_message, resolve_data_dir
from .sources import load_rgb, n_param, seed_param, subset_index

DATASET_ID = "office31"
CLASSES = ["back_pack", "bike", "bike_helmet", "bookcase", "bottle", "calculator", "desk_chair", "desk_lamp",
           "desktop_computer", "file_cabinet", "headphones", "keyboard", "laptop_computer", "letter_tray", "mobile_phone",
           "monitor", "mouse", "mug", "paper_notebook", "pen", "phone", "printer", "projector", "punchers", "ring_binder",
           "ruler", "scissors", "speaker", "stapler", "tape_dispenser", "trash_can"]
DOMAINS = ["amazon", "webcam"]
# The authors' page (https://faculty.cc.gatech.edu/~judy/domainadapt/) links this Google Drive file; no checksum is published.
IMAGES_TAR = RemoteFile(
    "domain_adaptation_images.tar.gz",
    "https://drive.usercontent.google.com/download?id=0B4IapRTv9pJ1WGZVd1VDMmhwdlE&export=download&confirm=t", "office31")
FEATURES_NPZ = RemoteFile("office31_resnet50.npz", None, "office31")
EXTRACTED = "domain_adaptation_images"
MEMBER = re.compile(r"(?:^|/)(amazon|webcam)/images/([^/]+)/[^/]+\.(?:jpe?g|png)$", re.IGNORECASE)
ERR_UNKNOWN_CLASS = "Office-31: unknown class folder '{name}' in {path}; expected one of the 31 Office-31 classes"
ERR_FEATURES = "Office-31 features file {path}: {problem}"


def _images_source(data_dir: Path | None) -> Path | None:
    data_dir = resolve_data_dir(data_dir)
    if data_dir is not None:
        for folder in (data_dir / "office31" / EXTRACTED, data_dir / EXTRACTED):
            if folder.is_dir():
                return folder
    return None


def _load_images(options: dict, data_dir: Path | None):
    path = _images_source(data_dir) or fetch_all("Office-31", [IMAGES_TAR], data_dir)[IMAGES_TAR.name]
    archive = Archive(path)
    members = []
    for name in archive.names:
        match = MEMBER.search(name)
        if match:
            domain, cls = match.group(1).lower(), match.group(2)
            if cls not in CLASSES:
                raise ValueError(ERR_UNKNOWN_CLASS.format(name=cls, path=path))
            members.append((DOMAINS.index(domain), CLASSES.index(cls), name))
    members.sort()  # ImageFolder order: domain, class, file name
    g = np.array([m[0] for m in members], dtype=np.int64)
    y = np.array([m[1] for m in members], dtype=np.int64)
    index = subset_index(options["n"], options["seed"], y, g)
    wanted = {members[i][2]: pos for pos, i in enumerate(index)}
    size = options["image_size"]
    X = np.zeros((len(index), size, size, 3), dtype=np.uint8)
    for name, data in archive.read_many(wanted):
        X[wanted[name]] = load_rgb(data, size)
    X = torch.from_numpy(X).permute(0, 3, 1, 2).float().div_(255.0).contiguous()
    built = (f"Amazon and Webcam images (RGB), shorter side resized bilinearly to {size}·256/224 and centre-cropped to "
             f"{size}×{size} (DFC/FCMI: 256 then 224), scaled to [0, 1]; ordered by domain, class, file name")
    return X, y[index], g[index], f"{IMAGES_TAR.url} (read from {path.name})", built


def _load_features(options: dict, data_dir: Path | None):
    path = fetch_all("Office-31 ResNet-50 features", [FEATURES_NPZ], data_dir)[FEATURES_NPZ.name]
    with np.load(path) as npz:
        missing = [k for k in ("amazon_x", "amazon_y", "webcam_x", "webcam_y") if k not in npz.files]
        if missing:
            raise ValueError(ERR_FEATURES.format(path=path, problem=f"missing arrays {missing}"))
        xs = [np.asarray(npz[f"{d}_x"], dtype=np.float32) for d in DOMAINS]
        ys = [np.asarray(npz[f"{d}_y"]).astype(np.int64).ravel() for d in DOMAINS]
    if any(x.ndim != 2 or len(x) != len(y) for x, y in zip(xs, ys)) or xs[0].shape[1] != xs[1].shape[1]:
        raise ValueError(ERR_FEATURES.format(path=path, problem="x must be rows × features, one label per row, same width"))
    if any(y.min() < 0 or y.max() >= len(CLASSES) for y in ys):
        raise ValueError(ERR_FEATURES.format(path=path, problem="labels must be class indices 0–30"))
    X, y = np.concatenate(xs), np.concatenate(ys)
    g = np.repeat(np.arange(2, dtype=np.int64), [len(ys[0]), len(ys[1])])
    index = subset_index(options["n"], options["seed"], y, g)
    built = f"user-provided features ({X.shape[1]} per image) from {path.name}, used as they are"
    return torch.from_numpy(X[index]), y[index], g[index], f"features provided by the user ({path})", built


def load(options: dict, data_dir: Path | None) -> BiasedDataset:
    """Office-31 Amazon + Webcam as images or user-provided ResNet-50 features; group = domain."""
    loader = _load_images if options["representation"] == "images" else _load_features
    X, y, g, source, built = loader(options, data_dir)
    subset = f"; stratified subset of {len(y):,} by class × domain (seed {options['seed']})" if options["n"] else ""
    return BiasedDataset(
        id=DATASET_ID, X=X, y=y, g=g, group_names=["Amazon", "Webcam"], class_names=list(CLASSES), n_clusters=31,
        options=dict(options),
        info=DatasetInfo(
            name="Office-31 (Amazon vs Webcam)", source=source,
            licence="research use (Saenko et al.; images collected from amazon.com and webcams)",
            citation="Saenko, Kulis, Fritz & Darrell 2010, Adapting visual category models to new domains (ECCV); "
                     "DFC §5; FCMI supplementary Table 1",
            built=built + f"; g = 0 Amazon, 1 Webcam{subset}",
        ),
    )


def available(data_dir: Path | None) -> bool:
    return _images_source(data_dir) is not None or all_local([IMAGES_TAR], data_dir)


def needs(data_dir: Path | None) -> str:
    if available(data_dir):
        return ""
    return missing_message("Office-31", [IMAGES_TAR], data_dir, "not in the data folder or the download cache") + \
        f"\n(or unpack it there as office31/{EXTRACTED}/amazon/images/…; for representation=features put " \
        f"{FEATURES_NPZ.relpath} with arrays amazon_x, amazon_y, webcam_x, webcam_y)"


SPEC = DatasetSpec(
    id=DATASET_ID, name="Office-31 (Amazon vs Webcam)",
    summary="Office-31 product photos from Amazon and a webcam, 31 object classes; group = domain (DFC, FCMI).",
    load=load,
    options=(
        n_param("3,612"), seed_param(),
        Param("representation", "images", kind="choice", choices=("images", "features"),
              help="images: the photos; features: ResNet-50 features you provide (office31/office31_resnet50.npz)."),
        Param("image_size", 64, kind="int", low=16, high=256,
              help="Side of the square images (DFC/FCMI use 224 for an ImageNet ResNet-50; 64 keeps CPU runs small).",
              source="DFC §5 (224)"),
    ),
    available=available, needs=needs, offline=False, downloads=lambda options: True,
    size="3,612 images (2,817 Amazon / 795 Webcam), 31 classes, 2 groups",
)
