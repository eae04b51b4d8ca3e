"""HAR, Office-31, MTFL and Mouse Atlas built from small files laid out like the originals, in a temporary data folder."""
from __future__ import annotations

import gzip
import io
import tarfile
import zipfile
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from dashboard_lib.data import load_dataset, max_balance
from dashboard_lib.data import har, mouse_atlas, mtfl, office31
from dashboard_lib.data.download import DataUnavailable
from dashboard_lib.data.sources import load_rgb


@pytest.fixture(autouse=True)
def isolated(fclab_home, monkeypatch):
    monkeypatch.setenv("FCLAB_OFFLINE", "1")
    monkeypatch.delenv("FCLAB_DATA_DIR", raising=False)


def jpeg(colour, size=(40, 30)) -> bytes:
    buf = io.BytesIO()
    Image.new("RGB", size, colour).save(buf, "JPEG")
    return buf.getvalue()


@pytest.mark.parametrize("spec", [har.SPEC, office31.SPEC, mtfl.SPEC, mouse_atlas.SPEC])
def test_unavailable_offline_with_a_clear_message(spec, tmp_path):
    assert not spec.available(tmp_path)
    needs = spec.needs(tmp_path)
    assert str(tmp_path) in needs and f"{spec.id}/" in needs
    with pytest.raises(DataUnavailable) as err:
        load_dataset(spec.id, {}, tmp_path)
    assert "switched off" in str(err.value) and str(tmp_path) in str(err.value)


def write_har(root: Path, subjects_train=(1, 3, 5), subjects_test=(2, 4)) -> None:
    rng = np.random.default_rng(1)
    (root / "train").mkdir(parents=True)
    (root / "test").mkdir()
    (root / "activity_labels.txt").write_text("1 WALKING\n2 WALKING_UPSTAIRS\n3 WALKING_DOWNSTAIRS\n4 SITTING\n5 STANDING\n6 LAYING\n")
    for split, subjects in (("train", subjects_train), ("test", subjects_test)):
        n = 6 * len(subjects)
        np.savetxt(root / split / f"X_{split}.txt", rng.uniform(-1, 1, (n, 561)), fmt="%.7e")
        np.savetxt(root / split / f"y_{split}.txt", np.tile(np.arange(1, 7), len(subjects)), fmt="%d")
        np.savetxt(root / split / f"subject_{split}.txt", np.repeat(subjects, 6), fmt="%d")


def test_har_from_an_unpacked_folder(tmp_path):
    write_har(tmp_path / "har" / "UCI HAR Dataset")
    assert har.available(tmp_path)
    d = load_dataset("har", {}, tmp_path)
    assert d.X.shape == (30, 561) and d.n_groups == 5 and d.group_names[0] == "subject 1"
    assert d.class_names == ["WALKING", "WALKING_UPSTAIRS", "WALKING_DOWNSTAIRS", "SITTING", "STANDING", "LAYING"]
    assert np.bincount(d.y).tolist() == [5] * 6 and d.y.min() == 0
    assert len(d.splits["train"]) == 18 and set(d.g[d.splits["test"]]) == {1, 3}
    assert "concatenated" in d.info.built


def test_har_from_the_zip(tmp_path):
    write_har(tmp_path / "unzipped" / "UCI HAR Dataset")
    (tmp_path / "har").mkdir()
    with zipfile.ZipFile(tmp_path / "har" / "UCI HAR Dataset.zip", "w") as zf:
        for path in (tmp_path / "unzipped").rglob("*.txt"):
            zf.write(path, path.relative_to(tmp_path / "unzipped").as_posix())
    d = load_dataset("har", {}, tmp_path)
    assert len(d) == 30 and d.n_features == 561 and d.n_groups == 5


OFFICE_FILES = [("amazon", "back_pack", 3), ("amazon", "bike", 3), ("webcam", "back_pack", 1), ("webcam", "trash_can", 2)]


def test_office31_images_from_the_tar(tmp_path):
    (tmp_path / "office31").mkdir()
    colours = {"amazon": (250, 0, 0), "webcam": (0, 0, 250)}
    with tarfile.open(tmp_path / "office31" / "domain_adaptation_images.tar.gz", "w:gz") as tf:
        for domain, cls, count in OFFICE_FILES:
            for i in range(count):
                data = jpeg(colours[domain])
                info = tarfile.TarInfo(f"{domain}/images/{cls}/frame_{i:04d}.jpg")
                info.size = len(data)
                tf.addfile(info, io.BytesIO(data))
    d = load_dataset("office31", {"image_size": 16}, tmp_path)
    assert d.X.shape == (9, 3, 16, 16) and d.n_clusters == 31 and len(d.class_names) == 31
    assert np.bincount(d.g).tolist() == [6, 3] and d.group_names == ["Amazon", "Webcam"]
    assert d.class_names[d.y[-1]] == "trash_can"
    assert float(d.X[d.g == 0][:, 0].mean()) > 0.9 and float(d.X[d.g == 1][:, 2].mean()) > 0.9


def test_office31_unknown_class_folder_is_an_error(tmp_path):
    folder = tmp_path / "domain_adaptation_images" / "amazon" / "images" / "cat"
    folder.mkdir(parents=True)
    (folder / "a.jpg").write_bytes(jpeg((0, 0, 0)))
    with pytest.raises(ValueError, match="unknown class folder 'cat'"):
        load_dataset("office31", {}, tmp_path)


def test_office31_user_features(tmp_path):
    (tmp_path / "office31").mkdir()
    rng = np.random.default_rng(0)
    np.savez(tmp_path / "office31" / "office31_resnet50.npz", amazon_x=rng.normal(size=(62, 8)), amazon_y=np.arange(62) % 31,
             webcam_x=rng.normal(size=(31, 8)), webcam_y=np.arange(31))
    d = load_dataset("office31", {"representation": "features"}, tmp_path)
    assert d.X.shape == (93, 8) and np.bincount(d.g).tolist() == [62, 31]
    assert max_balance(d) == pytest.approx(0.5)
    np.savez(tmp_path / "office31" / "office31_resnet50.npz", amazon_x=np.zeros((2, 8)))
    with pytest.raises(ValueError, match="missing arrays"):
        load_dataset("office31", {"representation": "features", "n": 1}, tmp_path)


def mtfl_zip(path: Path, n_per_cell: int = 5) -> None:
    """An MTFL-like zip: MTFL/{training,testing}.txt with backslash paths, 15 fields per line, gender × glasses cells."""
    lines = {"training.txt": [], "testing.txt": []}
    with zipfile.ZipFile(path, "w") as zf:
        k = 0
        for gender in (1, 2):
            for glasses in (1, 2):
                for i in range(n_per_cell):
                    name = f"lfw_5590\\face_{k:03d}.jpg"
                    coords = " ".join(["10.0"] * 10)
                    target = "training.txt" if i % 2 else "testing.txt"
                    lines[target].append(f" {name} {coords} {gender} 1 {glasses} 3")
                    zf.writestr("MTFL/" + name.replace("\\", "/"), jpeg((40 * gender, 100 * (glasses - 1), 0), (50, 60)))
                    k += 1
        for name, rows in lines.items():
            zf.writestr(f"MTFL/{name}", "\n".join(rows) + "\n")


def test_mtfl_gender_and_glasses(tmp_path):
    (tmp_path / "mtfl").mkdir()
    mtfl_zip(tmp_path / "mtfl" / "MTFL.zip")
    d = load_dataset("mtfl", {"image_size": 24}, tmp_path)
    assert d.X.shape == (20, 3, 24, 24) and d.class_names == ["female", "male"]
    assert d.group_names == ["without glasses", "with glasses"]
    assert np.bincount(d.g).tolist() == [10, 10] and np.bincount(d.y).tolist() == [10, 10]
    # gender code 1 = male (red 40), glasses code 1 = with (green 0) in the fixture's colours
    male_with = d.X[(d.y == 1) & (d.g == 1)]
    assert float(male_with[:, 0].mean()) == pytest.approx(40 / 255, abs=0.03) and float(male_with[:, 1].mean()) < 0.03
    assert "9116" in d.info.built


def test_mtfl_draw_is_fcmis():
    # without glasses: 400 female, 800 male; with glasses: 500 of each, fewer men than the quota of 654
    gender = np.concatenate([np.repeat([0, 1], [400, 800]), np.repeat([0, 1], [500, 500])])
    glasses = np.repeat([0, 1], [1200, 1000])
    chosen = mtfl.fcmi_selection(gender, glasses, 9116)
    assert np.bincount(glasses[chosen] * 2 + gender[chosen]).tolist() == [346, 654, 346, 500]
    assert len(set(chosen.tolist())) == len(chosen)
    assert np.array_equal(chosen, mtfl.fcmi_selection(gender, glasses, 9116))


def test_mtfl_bad_line_is_reported():
    with pytest.raises(ValueError, match="line 1 of training.txt"):
        mtfl.parse_annotations("img.jpg 1 2 3\n", "training.txt")


def write_mouse(folder: Path, n_genes: int = 30) -> None:
    rng = np.random.default_rng(0)
    cells = [f"cell{i}" for i in range(24)]
    folder.mkdir(parents=True)
    counts = rng.poisson(3.0, size=(n_genes, len(cells)))
    counts[0] *= 20  # one highly variable gene
    header = "\t".join(cells)
    body = "\n".join(f"gene{g}\t" + "\t".join(map(str, row)) for g, row in enumerate(counts))
    (folder / mouse_atlas.EXPRESSION.name).write_bytes(gzip.compress(f"{header}\n{body}\n".encode()))
    meta = "\tsample\tct\tbatchlb\n" + "\n".join(
        f"{c}\ts\t{['B cell', 'T cell', 'Stromal cell'][i % 3]}\t{'Batch1' if i < 16 else 'Batch2'}" for i, c in enumerate(reversed(cells)))
    (folder / mouse_atlas.CELLS.name).write_bytes(gzip.compress((meta + "\n").encode()))


def test_mouse_atlas_from_the_benchmark_files(tmp_path):
    write_mouse(tmp_path / "mouse_atlas")
    d = load_dataset("mouse_atlas", {"n_genes": 10}, tmp_path)
    assert d.X.shape == (24, 10) and d.group_names == ["Batch1", "Batch2"] and np.bincount(d.g).tolist() == [16, 8]
    assert d.class_names == ["B cell", "Stromal cell", "T cell"] and d.n_clusters == 3
    assert max_balance(d) == 0.5
    all_genes = load_dataset("mouse_atlas", {"n_genes": 0}, tmp_path)
    assert all_genes.X.shape == (24, 30) and float(all_genes.X.min()) >= 0.0
    assert "log1p" in d.info.built


def test_mouse_atlas_needs_its_columns(tmp_path):
    write_mouse(tmp_path / "mouse_atlas")
    (tmp_path / "mouse_atlas" / mouse_atlas.CELLS.name).write_bytes(gzip.compress(b"\tcelltype\nc1\tx\n"))
    with pytest.raises(ValueError, match="needs columns 'ct'"):
        load_dataset("mouse_atlas", {}, tmp_path)


def test_photo_resize_is_resize_then_centre_crop():
    buf = io.BytesIO()
    image = Image.new("RGB", (200, 100), (0, 0, 0))
    image.paste((255, 255, 255), (90, 0, 110, 100))  # a white bar in the middle
    image.save(buf, "PNG")
    out = load_rgb(buf.getvalue(), 28)
    assert out.shape == (28, 28, 3) and out[:, 14].min() > 200 and out[:, 0].max() < 30
