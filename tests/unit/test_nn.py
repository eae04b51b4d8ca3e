"""nn.pretrain_autoencoder (the shared autoencoder pretraining) and methods.base.Steps, on tiny hand-made data."""
import numpy as np
import pytest
import torch
from torch import nn

from dashboard_lib.methods.base import Steps
from dashboard_lib.nn import ERR_SCHEDULE, pretrain_autoencoder, to_numpy


def tiny(seed=0):
    torch.manual_seed(seed)
    model = nn.Sequential(nn.Linear(3, 2), nn.Linear(2, 3))
    X = torch.randn(10, 3)
    return model, X


def mse(x, x_hat):
    return {"L_rec": ((x_hat - x) ** 2).mean()}


def test_steps_schedule_counts_short_batches_without_training_on_them():
    model, X = tiny()
    calls, epochs_done, sizes = [], [], []

    def forward(x):
        sizes.append(len(x))
        return model(x)

    done = pretrain_autoencoder(model, X, forward, mse, lr=1e-2, batch_size=4, generator=torch.Generator().manual_seed(0),
                                steps=5, min_batch=3, on_step=lambda d, e, terms: calls.append((d, e, sorted(terms))),
                                on_epoch=epochs_done.append)
    # 10 rows in batches of 4, 4, 2: the batch of 2 (step 3) counts but is not trained on; step 5 is in the 2nd pass
    assert done == 5
    assert calls == [(1, 1, ["L_rec"]), (2, 1, ["L_rec"]), (4, 2, ["L_rec"]), (5, 2, ["L_rec"])]
    assert sizes == [4, 4, 4, 4]
    assert epochs_done == [1]  # the second pass stopped before its end


def test_epochs_schedule_trains_and_sums_the_named_terms():
    model, X = tiny()
    before = [p.detach().clone() for p in model.parameters()]
    logged = []

    def loss(x, x_hat):
        rec = ((x_hat - x) ** 2).mean()
        return {"L_rec": rec, "L_half": 0.5 * rec}

    pretrain_autoencoder(model, X, model, loss, lr=1e-2, batch_size=5, generator=torch.Generator().manual_seed(0),
                         epochs=3, on_step=lambda d, e, terms: logged.append(terms))
    assert len(logged) == 6
    assert all(not t.requires_grad for terms in logged for t in terms.values())
    assert all(float(terms["L_half"]) == pytest.approx(0.5 * float(terms["L_rec"])) for terms in logged)
    assert any(not torch.equal(a, b) for a, b in zip(before, model.parameters()))


def test_same_generator_seed_same_weights():
    results = []
    for _ in range(2):
        model, X = tiny()
        pretrain_autoencoder(model, X, model, mse, lr=1e-2, batch_size=3, generator=torch.Generator().manual_seed(7),
                             epochs=2)
        results.append(torch.cat([p.detach().flatten() for p in model.parameters()]))
    assert torch.equal(results[0], results[1])


@pytest.mark.parametrize("schedule", [{}, {"epochs": 1, "steps": 1}])
def test_schedule_is_epochs_or_steps(schedule):
    model, X = tiny()
    with pytest.raises(ValueError) as error:
        pretrain_autoencoder(model, X, model, mse, lr=1e-2, batch_size=4, generator=torch.Generator(), **schedule)
    assert str(error.value) == ERR_SCHEDULE


def test_zero_epochs_trains_nothing():
    model, X = tiny()
    before = [p.detach().clone() for p in model.parameters()]
    assert pretrain_autoencoder(model, X, model, mse, lr=1e-2, batch_size=4, generator=torch.Generator(), epochs=0) == 0
    assert all(torch.equal(a, b) for a, b in zip(before, model.parameters()))


def test_steps_tick_logs_and_reports_progress():
    class Context:
        def __init__(self):
            self.logged, self.progress_calls = [], []

        def log(self, step, **scalars):
            self.logged.append((step, scalars))

        def progress(self, fraction, stage=""):
            self.progress_calls.append((fraction, stage))

    ctx = Context()
    steps = Steps(ctx, 4)
    steps.tick("epoch 1/2", L=1.0)
    steps.tick("epoch 1/2", L=0.5)
    steps.report("k-means")
    assert ctx.logged == [(1, {"L": 1.0}), (2, {"L": 0.5})]
    assert ctx.progress_calls == [(0.25, "epoch 1/2"), (0.5, "epoch 1/2"), (0.5, "k-means")]
    Steps(ctx, 0).report("nothing planned")  # no division by zero
    assert ctx.progress_calls[-1] == (0.0, "nothing planned")


def test_to_numpy():
    assert np.array_equal(to_numpy(torch.tensor([1, 2], requires_grad=False)), np.array([1, 2]))
    assert np.array_equal(to_numpy(torch.ones(2, requires_grad=True) * 2), np.array([2.0, 2.0], dtype=np.float32))
    assert np.array_equal(to_numpy([3, 4]), np.array([3, 4]))
