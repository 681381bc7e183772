"""Progressive delivery of a new primary revision (issue 22). Pure: `steps` (the canary state
machine: judge a step, advance, pause, promote, abort), `capacity` (where the canary's pods come
from when no GPU is spare), `shape` (which rollout a reconcile is in and what it builds),
`observe` (a step from the routers' counters), `record` (the next status and the transition's
Event). I/O: `act` (one look at a running rollout, from the operator-wide loop); the reconcile's
side is `reconcile.canary`."""
