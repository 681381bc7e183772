"""Training-time augmentation that every class is invariant to."""

from __future__ import annotations

import torch


def random_dihedral(batch: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
    """One of the eight flips/quarter turns, chosen per batch (pizzas have no up or left)."""
    choice = int(torch.randint(8, (1,), generator=generator))
    out = torch.rot90(batch, k=choice % 4, dims=(2, 3))
    if choice >= 4:
        out = torch.flip(out, dims=(3,))
    return out
