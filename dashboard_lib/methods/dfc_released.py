"""DFC's released models for MNIST-USPS: the six files its public repository's `main.py` loads instead of training
stages 1 and 2 (a shared VAE encoder and its k-means centroids; per group, a separately trained encoder and DEC model).

The files are found in the data folder (`dfc_released/<name>`), the download cache, or downloaded from the public
repository at a pinned commit; every copy, local or downloaded, must have the SHA-256 listed here before it is read,
and is read with `torch.load(..., weights_only=True)` (tensors only, no code). The repository has no licence file,
so the lab never ships the weights: a user fetches them from their source.
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from ..data.download import DownloadError, RemoteFile, fetch_all, file_digest

REPOSITORY = "https://github.com/brandeis-machine-learning/DeepFairClustering"
COMMIT = "313208aa7596bed125a66ca8ff527e7a085161fb"  # the repository's last commit; the files date from e685b79
FOLDER = "dfc_released"
WHAT = "DFC's released MNIST-USPS models"
GROUP_FILES = {"MNIST": ("encoder_mnist.pth", "dec_mnist.pth"), "USPS": ("encoder_usps.pth", "dec_usps.pth")}


def _file(name: str, sha256: str, size: int) -> RemoteFile:
    return RemoteFile(name=name, url=f"https://raw.githubusercontent.com/brandeis-machine-learning/DeepFairClustering/"
                                     f"{COMMIT}/save/{name}", folder=FOLDER, sha256=sha256, size=size)


RELEASED_FILES = (
    _file("encoder_pretrain.pth", "04f4a74e32fd3f9cfe7d357b69519c2321935d91b46e4d7164136c3922acbe0f", 2450763),
    _file("centers.txt", "e0ebf2409e4be66e1b796fd88a2f5d856539dd58064a168741d6900be279488a", 16302),
    _file("encoder_mnist.pth", "d109b549dc7fcbb6bf8f01d6d948139b6d263af2cbb5c8a02e986b24d0548730", 2450887),
    _file("dec_mnist.pth", "f36ae54f617256efbc659674f37f8fe3e79fe5b727f1eecfddf533e3f3c4fb18", 3018),
    _file("encoder_usps.pth", "bfd14e992a34ebc4e9a38bfa4798594874f4bdb327f92d64e190e5713e716ac8", 2450875),
    _file("dec_usps.pth", "5b0da071110e1ec0dc19082882ae066b60050e31de293fa61dec0e46554238a5", 3018),
)

ERR_CHECKSUM = ("{path} is not the file the DFC authors released (SHA-256 expected {expected}, got {got}). Delete it; "
                "the lab then downloads the right one, or copy save/{name} from " + REPOSITORY + " into the data "
                "folder's " + FOLDER + "/ folder.")
ERR_UNREADABLE = "{path} could not be read as DFC's released {name}: {reason}. Delete it and fetch it again."

# The public Encoder's parameter names (module.py) → ours (nn.DFCAutoencoder): the same layers in the same order.
_PUBLIC_TO_OURS = {"conv1": "trunk.0", "bn1": "trunk.1", "conv2": "trunk.3", "bn2": "trunk.4", "conv3": "trunk.6",
                   "bn3": "trunk.7", "conv4": "trunk.9", "bn4": "trunk.10", "fc1": "trunk.13", "fc_bn1": "trunk.14",
                   "fc21": "fc_mu", "fc22": "fc_logvar"}


@dataclass
class ReleasedModels:
    """The loaded files: state_dicts in our DFCAutoencoder's names, centroids as K × 64 float32 tensors."""

    encoder: dict[str, torch.Tensor]
    centers: torch.Tensor
    group_encoders: list[dict[str, torch.Tensor]]  # in GROUP_FILES order: MNIST, USPS
    group_centers: list[torch.Tensor]
    paths: dict[str, Path]


def public_to_ours(state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """A public-code Encoder state_dict renamed for nn.DFCAutoencoder's encoder (its decoder is not released)."""
    out = {}
    for key, value in state.items():
        layer, _, rest = key.partition(".")
        if layer not in _PUBLIC_TO_OURS:
            raise ValueError(f"unexpected entry {key!r}: not a layer of DFC's public Encoder")
        out[f"{_PUBLIC_TO_OURS[layer]}.{rest}"] = value
    return out


def _checked(file: RemoteFile, path: Path) -> Path:
    got = file_digest(path)
    if got != file.sha256:
        raise ValueError(ERR_CHECKSUM.format(path=path, expected=file.sha256, got=got, name=file.name))
    return path


def _tensors(path: Path, name: str) -> dict[str, torch.Tensor]:
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # a truncated zip, a pickle with code in it (refused by weights_only), …
        raise ValueError(ERR_UNREADABLE.format(path=path, name=name, reason=f"{type(exc).__name__}: {exc}")) from None
    if not isinstance(state, dict) or not all(isinstance(v, torch.Tensor) for v in state.values()):
        raise ValueError(ERR_UNREADABLE.format(path=path, name=name, reason="it is not a state_dict of tensors"))
    return state


def _centers_text(path: Path) -> torch.Tensor:
    # Plain decimal numbers only: the file is read as data, never evaluated.
    text = path.read_text(encoding="ascii", errors="strict")
    rows = [line.split() for line in text.splitlines() if line.strip()]
    number = re.compile(r"^[-+]?\d+(\.\d+)?([eE][-+]?\d+)?$")
    if not rows or any(len(r) != len(rows[0]) or not all(number.match(v) for v in r) for r in rows):
        raise ValueError(ERR_UNREADABLE.format(path=path, name="centers.txt", reason="not a table of numbers"))
    return torch.tensor(np.array(rows, dtype=np.float64), dtype=torch.float32)


def load_released(data_dir: str | Path | None = None, files: tuple[RemoteFile, ...] = RELEASED_FILES,
                  progress=None) -> ReleasedModels:
    """Find (data folder, cache) or download the six files, check each SHA-256, and load them as tensors.

    Raises ValueError with what to do when a file is missing offline, has another checksum or cannot be read.
    `files` exists for tests, which make their own files with their own checksums.
    """
    try:
        found = fetch_all(WHAT, files, data_dir, progress)
    except DownloadError as exc:
        raise ValueError(f"{exc}\nThey are published at {REPOSITORY} (folder save/).") from None
    by_name = {f.name: f for f in files}
    paths = {name: _checked(by_name[name], path) for name, path in found.items()}
    encoder = public_to_ours(_tensors(paths["encoder_pretrain.pth"], "encoder_pretrain.pth"))
    group_encoders, group_centers = [], []
    for enc_name, dec_name in GROUP_FILES.values():
        group_encoders.append(public_to_ours(_tensors(paths[enc_name], enc_name)))
        dec = _tensors(paths[dec_name], dec_name)
        if "assignment.cluster_centers" not in dec:
            raise ValueError(ERR_UNREADABLE.format(path=paths[dec_name], name=dec_name,
                                                   reason="it holds no assignment.cluster_centers"))
        group_centers.append(dec["assignment.cluster_centers"].float())
    return ReleasedModels(encoder, _centers_text(paths["centers.txt"]), group_encoders, group_centers, paths)
