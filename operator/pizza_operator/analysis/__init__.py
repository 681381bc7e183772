"""The continuous analysis: every `spec.analysis.interval`, for as long as this replica leads.

One module per job: `gather` reads the signals (the only I/O here: Kubernetes through the API
door, the router pods' `/metrics` in `scrape`, Prometheus in `promql`; async, in the operator's
event loop), `kube_signals` reads Deployments and pods into signals (pure), `record` turns the
last analysis record and the new checks into the next one (pure), `tick` runs one tick and
returns a typed `TickResult`, and `write` carries out what the rollback's `plan` decided through
the API door. The verdicts, the ladder and the status patches are in `pizza_operator.rollback`.
Nothing here imports the reconcile: the handler reconciles when a tick changed the mode.
"""

from pizza_operator.analysis.gather import ScrapeMemory
from pizza_operator.analysis.tick import TickResult, tick
from pizza_operator.analysis.write import Door

__all__ = ["Door", "ScrapeMemory", "TickResult", "tick"]
