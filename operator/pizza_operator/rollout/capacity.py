"""Where the canary's pods come from (pure): beside the stable primary when GPUs are spare
(`Surge`), else from the stable primary itself (`Borrow`: one stable pod gives its GPUs to the
canary; the stable primary runs one pod fewer and the CPU fallback answers what it cannot take,
per request, so no client waits and none is refused; a stable primary of one pod lends it whole,
and the router sends the canary its share and the fallback the rest)."""

from __future__ import annotations

import dataclasses
from typing import Literal

Plan = Literal["Surge", "Borrow"]


@dataclasses.dataclass(frozen=True)
class Placement:
    plan: Plan
    stable_replicas: int  # the stable primary's pods during the rollout
    canary_replicas: int
    why: str


def place(stable_replicas: int, gpus_per_pod: int, gpus_free: int) -> Placement:
    """One canary pod; `gpus_free`: GPUs allocatable on the primary's nodes and not requested."""
    if gpus_per_pod == 0 or gpus_free >= gpus_per_pod:
        return Placement("Surge", stable_replicas, 1, f"{gpus_free} GPU(s) free beside the stable")
    if stable_replicas == 0:
        return Placement("Surge", 0, 1, "no stable primary pod: the canary waits for a GPU")
    if stable_replicas == 1:
        return Placement(
            "Borrow",
            0,
            1,
            f"{gpus_free} GPU(s) free, {gpus_per_pod} needed: the stable pod's GPUs go to the "
            "canary, which gets its share of primary traffic; the fallback answers the rest",
        )
    return Placement(
        "Borrow",
        stable_replicas - 1,
        1,
        f"{gpus_free} GPU(s) free, {gpus_per_pod} needed: one stable pod's GPUs go to the canary, "
        "the fallback answers what the smaller stable primary cannot",
    )
