"""Operator settings, from the command line."""

from __future__ import annotations

import dataclasses

DEFAULT_IMAGE = "pizza-operator:0.1.0"
DEFAULT_RESYNC_SECONDS = 60.0


@dataclasses.dataclass(frozen=True)
class OperatorConfig:
    """What the reconcile loop needs to know beyond the resource itself."""

    default_image: str = DEFAULT_IMAGE
    resync_seconds: float = DEFAULT_RESYNC_SECONDS
    full_resync_seconds: float = 600.0  # re-apply unchanged children at least this often
    status_coalesce_seconds: float = 0.3  # child events within this window: one status refresh
