"""kwok Stage definitions, copied unchanged from sigs.k8s.io/kwok v0.8.0 `kustomize/stage/`.

Licence: Apache-2.0 (kwok authors).

node-initialize (fast), node-heartbeat-with-lease, pod-ready/pod-complete/pod-delete (fast) and the
chaos stage pod-container-running-failed: label a pod
`pod-container-running-failed.stage.kwok.x-k8s.io=true` to make its containers fail once Running.
"""
