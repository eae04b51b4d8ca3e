"""DFC's stage 2 (each group's own model) and its released-model loader, on files these tests make: the right
checksum is accepted, a wrong one refused with what to do, offline and over HTTP on 127.0.0.1."""
from __future__ import annotations

import hashlib
import io

import numpy as np
import pytest
import torch

from dashboard_lib.data import BiasedDataset, DatasetInfo
from dashboard_lib.data import download as dl
from dashboard_lib.methods import dfc_released
from dashboard_lib.methods.dfc import DFC, changed_share, group_model_report
from dashboard_lib.methods.dfc_released import RELEASED_FILES, load_released, public_to_ours
from dashboard_lib.nn import DFCAutoencoder
from tests.unit.test_dec import FIT, evaluated, synthetic, single_thread  # noqa: F401 (autouse fixture)
from tests.unit.test_download import Server


@pytest.fixture(autouse=True)
def home(fclab_home, monkeypatch):
    monkeypatch.delenv("FCLAB_DATA_DIR", raising=False)
    monkeypatch.delenv("FCLAB_DOWNLOAD_MIRROR", raising=False)
    monkeypatch.setenv("FCLAB_OFFLINE", "1")
    return fclab_home


def public_encoder_state(seed: int) -> dict[str, torch.Tensor]:
    """A state_dict in the public code's Encoder names (module.py): our encoder's layers renamed back."""
    torch.manual_seed(seed)
    ours = DFCAutoencoder((1, 28, 28), 64, pad=2)
    back = {v: k for k, v in dfc_released._PUBLIC_TO_OURS.items()}
    out = {}
    for key, value in ours.state_dict().items():
        if key.startswith("untrunk"):
            continue
        layer, _, rest = key.rpartition(".")
        out[f"{back[layer]}.{rest}"] = value.clone()
    return out


def made_files(folder) -> tuple[dl.RemoteFile, ...]:
    """The six files in the public formats, written to folder/dfc_released/, with their own checksums."""
    target = folder / dfc_released.FOLDER
    target.mkdir(parents=True)
    bodies = {}
    for i, name in enumerate(("encoder_pretrain.pth", "encoder_mnist.pth", "encoder_usps.pth")):
        buffer = io.BytesIO()
        torch.save(public_encoder_state(i), buffer)
        bodies[name] = buffer.getvalue()
    for i, name in enumerate(("dec_mnist.pth", "dec_usps.pth")):
        buffer = io.BytesIO()
        torch.save({"assignment.cluster_centers": torch.full((10, 64), float(i))}, buffer)
        bodies[name] = buffer.getvalue()
    centers = np.arange(640, dtype=np.float64).reshape(10, 64) / 100
    text = io.StringIO()
    np.savetxt(text, centers)  # the format of the released centers.txt
    bodies["centers.txt"] = text.getvalue().encode()
    files = []
    for name, body in bodies.items():
        (target / name).write_bytes(body)
        files.append(dl.RemoteFile(name, f"http://127.0.0.1:9/{name}", dfc_released.FOLDER,
                                   sha256=hashlib.sha256(body).hexdigest()))
    return tuple(files)


def test_public_names_map_onto_our_encoder():
    state = public_to_ours(public_encoder_state(0))
    model = DFCAutoencoder((1, 28, 28), 64, pad=2)
    model.untrunk = None
    model.load_state_dict(state)  # strict: every layer present, none left over
    with pytest.raises(ValueError, match="not a layer of DFC's public Encoder"):
        public_to_ours({"decoder.weight": torch.zeros(1)})


def test_padding_frames_digits_as_the_released_weights_saw_them():
    model = DFCAutoencoder((1, 28, 28), 64, pad=2)
    x = torch.rand(3, 1, 28, 28)
    framed = model.prepare(x)
    assert framed.shape == (3, 1, 32, 32)
    assert torch.equal(framed[:, :, 2:30, 2:30], x) and framed[:, :, :2].abs().sum() == 0
    with pytest.raises(ValueError, match="not the encoder's 32×32"):
        DFCAutoencoder((1, 16, 16), 64, pad=2)


def test_loader_accepts_files_with_their_checksums(tmp_path):
    files = made_files(tmp_path)
    models = load_released(tmp_path, files=files)
    assert models.centers.shape == (10, 64) and models.centers[1, 0] == pytest.approx(0.64)
    assert [float(c[0, 0]) for c in models.group_centers] == [0.0, 1.0]
    assert set(models.encoder) == set(public_to_ours(public_encoder_state(0)))
    assert not torch.equal(models.group_encoders[0]["trunk.0.weight"], models.encoder["trunk.0.weight"])


def test_loader_refuses_a_file_that_is_not_the_released_one(tmp_path):
    made_files(tmp_path)  # right formats, but not the authors' bytes: the real list's checksums refuse them
    with pytest.raises(ValueError) as info:
        load_released(tmp_path)
    message = str(info.value)
    assert "is not the file the DFC authors released" in message and "Delete it" in message
    assert RELEASED_FILES[0].sha256 in message or any(f.sha256 in message for f in RELEASED_FILES)


def test_loader_offline_lists_the_missing_files(tmp_path):
    with pytest.raises(ValueError) as info:
        load_released(tmp_path)
    message = str(info.value)
    assert "dfc_released/encoder_mnist.pth" in message and "github.com/brandeis-machine-learning" in message


def test_loader_downloads_checks_and_caches(tmp_path, monkeypatch, fclab_home):
    made = made_files(tmp_path / "made")
    server = Server()
    try:
        files = tuple(dl.RemoteFile(f.name, server.add(f"/{f.name}", (tmp_path / "made" / f.folder / f.name).read_bytes()),
                                    f.folder, sha256=f.sha256) for f in made)
        monkeypatch.delenv("FCLAB_OFFLINE")
        seen = []
        models = load_released(None, files=files, progress=lambda done, total: seen.append((done, total)))
        assert models.centers.shape == (10, 64) and seen and seen[-1][0] == seen[-1][1]
        assert all(p.is_relative_to(fclab_home) for p in models.paths.values())  # in the download cache
        bad = tuple(dl.RemoteFile(f.name, f.url, "other", sha256="0" * 64) for f in files)
        with pytest.raises(ValueError, match="checksum mismatch"):
            load_released(None, files=bad)
    finally:
        server.httpd.shutdown()
        server.httpd.server_close()


def test_unreadable_weights_get_a_clear_message(tmp_path):
    files = made_files(tmp_path)
    path = tmp_path / dfc_released.FOLDER / "dec_usps.pth"
    path.write_bytes(b"not a zip")
    files = tuple(dl.RemoteFile(f.name, f.url, f.folder, sha256=hashlib.sha256(path.read_bytes()).hexdigest())
                  if f.name == "dec_usps.pth" else f for f in files)
    with pytest.raises(ValueError, match="could not be read as DFC's released dec_usps.pth"):
        load_released(tmp_path, files=files)


def mnist_usps_like(n=64) -> BiasedDataset:
    rng = np.random.default_rng(0)
    return BiasedDataset(id="mnist_usps", X=torch.from_numpy(rng.random((n, 1, 28, 28), dtype=np.float32)),
                         y=np.arange(n) % 10, g=np.arange(n) % 2, group_names=["MNIST", "USPS"],
                         class_names=[str(i) for i in range(10)], n_clusters=10, info=DatasetInfo(name="t", source="test"))


def test_released_init_trains_only_the_fair_stage(tmp_path, monkeypatch):
    monkeypatch.setattr(dfc_released, "RELEASED_FILES", made_files(tmp_path))
    monkeypatch.setenv(dl.DATA_DIR_ENV, str(tmp_path))  # the data folder an estimator's run finds files in
    method = DFC(init="released", iterations=3, eval_every=0, batch_per_group=8, **FIT)
    data = mnist_usps_like()
    method.check_data(data)
    method.fit(data)
    assert evaluated(method) == [0, 3]
    logged = method.history_["scalars"]
    assert "L_rec" not in logged and "L_group_dec" not in logged  # nothing of stages 1–2 trained
    assert [r["group"] for r in method.group_report_] == ["MNIST", "USPS"]
    assert method.model_.pad == 2
    with pytest.raises(ValueError, match="the released models are MNIST-USPS's"):
        DFC(init="released").check_data(synthetic((1, 28, 28), n=80))


def test_each_group_gets_its_own_model():
    data = synthetic((1, 28, 28), n=80)
    method = DFC(pretrain_steps=3, pretrain_batch_size=16, group_pretrain_epochs=1, group_dec_epochs=2, group_dec_tol=0,
                 iterations=2, eval_every=0, batch_per_group=8, latent_dim=6, n_init=1, **FIT)
    method.fit(data)
    shared = method.model_.trunk[0].weight.detach().flatten()
    for encoder, _ in method.group_models_:
        own = encoder.trunk[0].weight.detach().flatten()
        assert not torch.equal(own, shared)
        # separately initialised and trained, not a copy of the shared encoder fine-tuned a little
        assert abs(float(torch.corrcoef(torch.stack([own, shared]))[0, 1])) < 0.5
        assert not any(p.requires_grad for p in encoder.parameters())  # frozen for the fair stage
    assert {"L_group_rec", "L_group_dec", "L_rec"} <= set(method.history_["scalars"])
    assert [r["dec_epochs"] for r in method.group_report_] == [2, 2]
    assert {"start_acc", "start_nmi", "model_acc", "model_nmi"} <= set(method.group_report_[0])


def test_group_dec_stops_once_assignments_settle():
    assert changed_share(torch.tensor([0, 1, 2, 3]), torch.tensor([0, 1, 2, 0])) == 0.25
    data = synthetic((1, 28, 28), n=80)
    method = DFC(pretrain_steps=2, pretrain_batch_size=16, group_pretrain_epochs=1, group_dec_epochs=50, group_dec_tol=1.0,
                 iterations=1, eval_every=0, batch_per_group=8, latent_dim=6, n_init=1, **FIT)
    method.fit(data)
    assert [r["dec_epochs"] for r in method.group_report_] == [1, 1]  # tol 100%: settled after the first epoch
    assert all(r["dec_stopped"].startswith("settled") for r in method.group_report_)


def test_group_model_report_hand_case():
    # y = 0 0 1 1; shared start puts everything in one cluster: ACC 0.5, NMI 0; the group model matches y: 1, 1.
    row = group_model_report("A", 4, np.array([0, 0, 1, 1]), np.array([0, 0, 0, 0]), np.array([1, 1, 0, 0]))
    assert (row["start_acc"], row["model_acc"], row["model_nmi"]) == (0.5, 1.0, pytest.approx(1.0))
    assert row["start_nmi"] == pytest.approx(0.0)
    assert "model_acc" not in group_model_report("A", 4, None, np.zeros(4), np.zeros(4))
