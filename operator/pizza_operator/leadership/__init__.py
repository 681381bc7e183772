"""Leader election on a coordination.k8s.io Lease: `lease` decides (pure), `elector` reads and
writes the Lease and keeps the operator's writes fenced to the term it holds."""

from pizza_operator.leadership.elector import Elector
from pizza_operator.leadership.lease import Seen, Timing

__all__ = ["Elector", "Seen", "Timing"]
