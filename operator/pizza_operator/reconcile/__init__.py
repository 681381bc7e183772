"""The reconcile loop: from a PizzaModelDeployment to its children and its status.

Level-based: create, update, resume, the periodic timer and child events all converge through
`Reconciler.reconcile()`, which reads the resource, builds every child with the pure builders,
server-side applies those that differ from the cluster and writes the status. Nothing depends on
which event fired, and nothing depends on process memory: each child carries the hash of what we
applied (`contract.DESIRED_HASH_ANNOTATION`), so a new leader judges every child from the cluster
alone.

- `reconciler`: `Reconciler`, the order of the steps, one lock per resource;
- `apply`: the children through the API door (list owned, plan, check names and dry-run the
  whole set, apply, replace, prune);
- `readiness`: what the status is computed from (Deployments, the Services' endpoints), how long
  kube-proxy still gets, and looking again while Ready waits for the endpoints;
- `report`: the status write, its Events, and `ReconcileResult`;
- `events`: which Events to post (pure);
- `backoff`: how long to wait before retrying after an API error (pure).
"""

from pizza_operator.reconcile.backoff import retry_delay
from pizza_operator.reconcile.reconciler import Reconciler
from pizza_operator.reconcile.report import ReconcileResult

__all__ = ["ReconcileResult", "Reconciler", "retry_delay"]
