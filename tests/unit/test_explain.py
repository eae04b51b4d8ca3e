"""Grad-CAM through captum on tiny CNNs whose answer is known, the stroke-mass share, colour reliance, run loading."""
import time

import numpy as np
import pytest
import torch
from torch import nn

from dashboard_lib import explain
from dashboard_lib.data import BiasedDataset, DatasetInfo, load_dataset
from dashboard_lib.jobs import JobRegistry, RunConfig
from dashboard_lib.methods.clusterfix import build_classifier
from dashboard_lib.store import RunStore


def _identity_cnn() -> nn.Module:
    """conv 1×1 (weight 1) → ReLU → global average pool → linear with weights (+1, −1): class 0 = mean brightness."""
    conv = nn.Conv2d(1, 1, 1, bias=False)
    head = nn.Linear(1, 2, bias=False)
    with torch.no_grad():
        conv.weight.fill_(1.0)
        head.weight.copy_(torch.tensor([[1.0], [-1.0]]))
    return nn.Sequential(conv, nn.ReLU(), nn.AdaptiveAvgPool2d(1), nn.Flatten(), head)


def _stroke_image(background: float = 0.0) -> torch.Tensor:
    x = torch.full((1, 1, 8, 8), background)
    x[0, 0, 2:4, 3:5] = 1.0  # a 2 × 2 "stroke": 4 pixels of 64
    return x


def test_gradcam_of_a_known_cnn():
    # Class 0: ∂y_0/∂A = 1/64 at every pixel, so α = 1/64 and cam = ReLU(α·A) = x/64 exactly (A = ReLU(x) = x).
    # Class 1: α = −1/64, so cam = ReLU(−x/64) = 0 everywhere.
    model, x = _identity_cnn(), _stroke_image()
    assert torch.allclose(explain.grad_cam(model, x, [0])[0], x[0, 0] / 64)
    assert float(explain.grad_cam(model, x, [1]).abs().sum()) == 0.0


def test_stroke_mass_share_by_hand():
    model = _identity_cnn()
    # Black background: all the mass is on the 4 stroke pixels → 1.
    x = _stroke_image()
    assert explain.stroke_mass_share(explain.grad_cam(model, x, [0])[0], x[0]) == pytest.approx(1.0)
    # A 0.1 tint on the 60 background pixels: cam ∝ x, so strokes hold 4·1 / (4·1 + 60·0.1) = 4/10 = 0.4.
    x = _stroke_image(background=0.1)
    assert explain.stroke_mass_share(explain.grad_cam(model, x, [0])[0], x[0]) == pytest.approx(0.4)
    # A map that is zero everywhere has no share; an explicit mask overrides the stroke detection.
    assert np.isnan(explain.stroke_mass_share(np.zeros((8, 8)), x[0]))
    mask = np.zeros((8, 8), bool)
    mask[0] = True  # the first row: 8 background pixels of 0.1 → 0.8 / 10 = 0.08
    assert explain.stroke_mass_share(x[0, 0].numpy(), x[0], mask=mask) == pytest.approx(0.08)
    assert explain.stroke_area_share(_stroke_image()) == pytest.approx(4 / 64)


def test_gradcam_is_upsampled_to_the_input_and_reads_the_last_block():
    model = nn.Sequential(nn.Conv2d(3, 4, 3, stride=2, padding=1), nn.BatchNorm2d(4), nn.ReLU(),
                          nn.Conv2d(4, 4, 3, stride=2, padding=1), nn.ReLU(), nn.AdaptiveAvgPool2d(1), nn.Flatten(),
                          nn.Linear(4, 2))
    assert explain.gradcam_layer(model) is model[4]  # the ReLU closing the last conv block
    assert explain.gradcam_layer(model, block=-2) is model[2]
    assert explain.block_sizes(model, (3, 28, 28)) == [(14, 14), (7, 7)]
    cam = explain.grad_cam(model, torch.rand(5, 3, 28, 28), [0, 1, 0, 1, 0])
    assert cam.shape == (5, 28, 28) and float(cam.min()) >= 0


def test_a_model_without_convolution_gets_a_clear_message():
    mlp = nn.Sequential(nn.Flatten(), nn.Linear(64, 2))
    with pytest.raises(explain.ExplainError, match="has no convolutional layer, so Grad-CAM"):
        explain.grad_cam(mlp, torch.rand(2, 1, 8, 8), [0, 1])
    # ClusterFix on vectors (HAR, uploads) trains an MLP: the same message, naming what to do.
    vector_model = build_classifier({"clusters_per_class": 8}, (561,), 6, with_cluster_heads=True)
    with pytest.raises(explain.ExplainError, match="Explain a run trained on images"):
        explain.gradcam_layer(vector_model)


class _ReadsRed(nn.Module):
    """Predicts class 0 when the red channel is brighter than the green one: a pure colour shortcut."""

    def forward(self, x):
        return torch.stack([x[:, 0].mean((1, 2)), x[:, 1].mean((1, 2))], 1)


class _ReadsShape(nn.Module):
    """Ignores colour: the brightest channel's top half against its bottom half."""

    def forward(self, x):
        grey = x.max(1).values
        return torch.stack([grey[:, :4].mean((1, 2)), grey[:, 4:].mean((1, 2))], 1)


def test_colour_swap_flip_rate_separates_colour_from_shape():
    palette = (("red", (1.0, 0.0, 0.0)), ("green", (0.0, 1.0, 0.0)))
    grey = torch.rand(6, 1, 8, 8)
    groups = np.array([0, 1, 0, 1, 0, 1])
    images = explain.recolour(grey.repeat(1, 3, 1, 1), torch.tensor([palette[g][1] for g in groups]))
    assert torch.allclose(images[0, 0], grey[0, 0]) and float(images[0, 1:].abs().sum()) == 0  # red: R channel only
    assert explain.colour_swap_flip_rate(_ReadsRed(), images, groups, palette) == 1.0
    assert explain.colour_swap_flip_rate(_ReadsShape(), images, groups, palette) == 0.0


def test_overlay_and_upscale():
    image = torch.rand(3, 28, 28)
    out = explain.overlay(image, np.random.rand(28, 28), scale=4)
    assert out.shape == (112, 112, 3) and out.dtype == np.uint8
    assert explain.to_rgb(torch.rand(1, 8, 8)).shape == (8, 8, 3)


def _biased_toy() -> BiasedDataset:
    # Class 0 mostly group 0, class 1 mostly group 1 in training; a test split with both.
    y = np.array([0] * 10 + [1] * 10 + [0, 0, 1, 1, 0, 1])
    g = np.array([0] * 9 + [1] + [1] * 9 + [0] + [0, 1, 0, 1, 0, 1])
    return BiasedDataset(id="toy", X=torch.rand(26, 1, 4, 4), y=y, g=g, group_names=["a", "b"], class_names=["0", "1"],
                         n_clusters=2, info=DatasetInfo(name="toy", source="test"),
                         splits={"train": np.arange(20), "test": np.arange(20, 26)})


def test_bias_aligned_and_picked_images():
    data = _biased_toy()
    aligned = explain.bias_aligned(data, data.splits["train"])
    assert aligned[20:].tolist() == [1, 0, 0, 1, 1, 1]  # (y, g) = (0,0) (0,1) (1,0) (1,1) (0,0) (1,1)
    picked = explain.pick_images(data, per_group=4, seed=0)
    assert sorted(picked["bias-aligned"].tolist()) == [20, 23, 24, 25]
    assert sorted(picked["bias-conflicting"].tolist()) == [21, 22]
    two = explain.pick_images(data, per_group=2, seed=0)["bias-aligned"]
    assert sorted(data.y[two].tolist()) == [0, 1]  # balanced over the classes


def test_real_runs_load_and_explain_quickly(tmp_path):
    store = RunStore(tmp_path / "store")
    registry = JobRegistry(store)
    hparams = {"ae_epochs": 1, "epochs": 1, "batch_size": 64, "width": 8}
    settings = {"erm": hparams, "clusterfix": {**hparams, "clusters_per_class": 2}, "kmeans": {"n_init": 1}}
    run_ids = [registry.start(RunConfig(dataset="mnist_optdigits", method=m, dataset_options={"n": 300}, hparams=h))
               for m, h in settings.items()]
    for run_id in run_ids:
        assert registry.wait(run_id, 60)
    erm, cf, km = (store.get_run(i) for i in run_ids)
    with pytest.raises(explain.ExplainError, match="saved no classifier weights"):
        explain.load_run_model(store, km)
    data = load_dataset("mnist_optdigits", {"n": 300})
    picked = explain.pick_images(data, 8, seed=0)
    chosen = np.concatenate(list(picked.values()))
    sample = explain.stroke_sample(data, 300)
    assert len(chosen) == 16 and len(sample) > 100
    start = time.perf_counter()
    for run in (erm, cf):
        result = explain.explain_model(explain.load_run_model(store, run), data, chosen, sample)
        assert result.cams.shape == (16, 28, 28) and 0 <= result.stroke_share <= 1
        assert ((0 <= result.confidence) & (result.confidence <= 1)).all() and result.colour_flip_rate is None
    assert time.perf_counter() - start < 10, "Grad-CAM of two models on 16 images (+ the stroke sample) should take seconds"


def test_shares_and_differences_never_print_a_signed_zero():
    assert explain.format_share(-0.0001) == "0.00" and explain.format_share(-0.0) == "0.00"
    assert explain.format_share(0.372) == "0.37" and explain.format_share(1.0) == "1.00"
    assert explain.format_share(0.5, digits=1) == "0.5"
    assert explain.format_share(None) == "n/a" and explain.format_share(float("nan")) == "n/a"
    assert explain.format_difference(-0.004, tolerance=0.01) == "no difference"
    assert explain.format_difference(0.004, tolerance=0.001) == "no difference"  # beyond tolerance but rounds to 0.00
    assert explain.format_difference(-0.12, tolerance=0.01) == "\u22120.12"
    assert explain.format_difference(0.04, tolerance=0.01) == "+0.04"


def test_the_sentence_follows_the_flip_rates():
    s = explain.colour_reliance_sentence({"ERM": 1.0, "ClusterFix": 0.37})
    assert s == ("ERM relies on the colour more than ClusterFix: swapping the colour changes 100% of ERM's predictions "
                 "and 37% of ClusterFix's, 63 percentage points more. ERM reads almost nothing but the colour.")
    # The numbers changed: the other model is the one that reads the colour, and one is nearly blind to it.
    s = explain.colour_reliance_sentence({"ERM": 0.02, "ClusterFix": 0.6})
    assert s.startswith("ClusterFix relies on the colour more than ERM: swapping the colour changes 60% of ClusterFix's "
                        "predictions and 2% of ERM's, 58 percentage points more.")
    assert s.endswith("ERM is almost blind to it.") and "nothing but" not in s
    # Within the tolerance: no winner is named.
    s = explain.colour_reliance_sentence({"ERM": 0.50, "ClusterFix": 0.53})
    assert s == ("ERM and ClusterFix change about as many predictions when the colour is swapped (0.50 and 0.53): "
                 "this measure does not separate them.")
    assert "relies" in explain.colour_reliance_sentence({"ERM": 0.50, "ClusterFix": 0.53}, tolerance=0.01)
    # The gap is the difference of the percentages printed, so the sentence adds up.
    assert "38% of ERM's predictions and 12% of ClusterFix's, 26 percentage points" in \
        explain.colour_reliance_sentence({"ERM": 0.376, "ClusterFix": 0.124})


def test_the_stroke_share_against_a_map_spread_evenly():
    assert explain.stroke_share_sentence("ERM", 0.16, 0.18) == \
        "ERM: 0.16 of the map on the strokes, 0.02 less than a map spread evenly."
    assert explain.stroke_share_sentence("ClusterFix", 0.30, 0.18) == \
        "ClusterFix: 0.30 of the map on the strokes, 0.12 more than a map spread evenly."
    assert explain.stroke_share_sentence("ERM", 0.184, 0.18) == \
        "ERM: 0.18 of the map on the strokes, the same as a map spread evenly."
    assert "every Grad-CAM map is zero" in explain.stroke_share_sentence("ERM", float("nan"), 0.18)
