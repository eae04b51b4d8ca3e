"""Shared network blocks and training helpers used by several methods."""
from __future__ import annotations

from typing import Callable, Iterator, Sequence

import torch
from torch import nn


def mlp(sizes: Sequence[int], *, last_activation: bool = False, batch_norm: bool = False) -> nn.Sequential:
    """Fully connected layers sizes[0] → … → sizes[-1] with ReLU between them (and after the last if asked)."""
    layers: list[nn.Module] = []
    for i, (n_in, n_out) in enumerate(zip(sizes[:-1], sizes[1:])):
        layers.append(nn.Linear(n_in, n_out))
        if i < len(sizes) - 2 or last_activation:
            if batch_norm:
                layers.append(nn.BatchNorm1d(n_out))
            layers.append(nn.ReLU())
    return nn.Sequential(*layers)


class MLPAutoencoder(nn.Module):
    """DEC's feed-forward autoencoder d-500-500-2000-z and its mirror (Xie et al. 2016; ClustPy's default)."""

    def __init__(self, n_features: int, latent_dim: int = 10, hidden: Sequence[int] = (500, 500, 2000)):
        super().__init__()
        self.encoder = mlp([n_features, *hidden, latent_dim])
        self.decoder = mlp([latent_dim, *reversed(hidden), n_features])

    def encode(self, x: torch.Tensor) -> torch.Tensor:
        return self.encoder(x.flatten(1))

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        z = self.encode(x)
        return z, self.decoder(z).view_as(x)


def minibatches(n: int, batch_size: int, generator: torch.Generator, device: torch.device) -> Iterator[torch.Tensor]:
    """Index tensors of one shuffled epoch over n samples (on device, so slicing the data needs no copy to the host)."""
    order = torch.randperm(n, generator=generator).to(device)
    for start in range(0, n, batch_size):
        yield order[start:start + batch_size]


@torch.no_grad()
def embed(model: nn.Module, encode: Callable[[torch.Tensor], torch.Tensor], X: torch.Tensor, batch_size: int = 4096) -> torch.Tensor:
    """encode(x) for all of X with model in eval mode, batched to bound memory."""
    was_training = model.training
    model.eval()
    out = torch.cat([encode(X[i:i + batch_size]) for i in range(0, len(X), batch_size)])
    model.train(was_training)
    return out
