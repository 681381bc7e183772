"""Progressive delivery of a new primary revision (issue 22), the pure core: `steps` (the canary
state machine: judge a step, advance, pause, promote, abort) and `capacity` (where the canary's
pods come from when no GPU is spare). Not wired into the reconcile yet: the API field
`spec.rollout`, the canary Deployment and the router's routing table come next."""
