#!/usr/bin/env bash
# `make demo`: the whole product on the local cluster's real nodes, nothing on the host but the
# cluster itself.
#   1. the local cluster with two real nodes (a GPU-role and a CPU-role kubelet, each with its own
#      containerd) beside the kwok nodes (make cluster-up);
#   2. the images, built with buildah and imported into the nodes (make images);
#   3. the operator installed by Helm (two replicas, one active: the Lease holder) in a namespace
#      enforcing Pod Security "restricted", then `helm test`;
#   4. the local sample PizzaModelDeployment until Ready, every pod running on a real node;
#   5. fresh pizza images classified through the router's Service;
#   6. the primary's container frozen (SIGSTOP on its processes): the same requests answered by the
#      fallback, with fallback_reason; then the primary thawed;
#   7. automatic rollback: under load (8 requests a second), the primary frozen for good; the
#      operator's analysis rolls back to stable on its own, no request unanswered; then an SRE's
#      retry (the pizza.ai/retry annotation) brings the primary back (hack/demo_rollback.py).
# `make demo-down` (= `hack/demo.sh down` then `make cluster-down`) removes all of it.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT="$PWD"
export PATH="$ROOT/.bin:$ROOT/.venv/bin:$PATH"
export KUBECONFIG="$ROOT/.cluster/kubeconfig"
PY="$ROOT/.venv/bin/python"
OPERATOR_NS=pizza-system
APP_NS=pizza-demo
RELEASE=pizza-operator
SAMPLE=manifests/samples/pizza-classifier-local.yaml
WORK="$ROOT/.cluster/demo"
T0=$(date +%s.%N)

step() { printf '\n\033[1m==> [%5.1f s] %s\033[0m\n' "$(elapsed)" "$*"; }
elapsed() { awk -v s="$T0" -v e="$(date +%s.%N)" 'BEGIN { printf "%.1f", e - s }'; }

restricted_namespace() {  # restricted_namespace NAME
  kubectl create namespace "$1" --dry-run=client -o yaml |
    kubectl label --local -f - -o yaml \
      pod-security.kubernetes.io/enforce=restricted pod-security.kubernetes.io/enforce-version=latest |
    kubectl apply -f - >/dev/null
  echo "namespace $1 enforces Pod Security restricted"
}

if [[ "${1:-up}" == "down" ]]; then
  if [[ -f "$KUBECONFIG" ]] && kubectl get --raw /readyz >/dev/null 2>&1; then
    kubectl delete namespace "$APP_NS" --ignore-not-found --wait=true --timeout=60s || true
    helm uninstall "$RELEASE" -n "$OPERATOR_NS" --wait --timeout 60s 2>/dev/null || true
  fi
  exit 0
fi

step "local cluster with real nodes (make cluster-up; the first build of the binaries takes long)"
make --no-print-directory cluster-up
kubectl get nodes -L node-role.pizza.ai/gpu,pizza.ai/real-node

step "images (make images: buildah, no registry; imported into the real nodes)"
make --no-print-directory images
pizza-devcluster import-images --dir .cluster   # into the running nodes; unchanged images are skipped

step "the operator, installed by Helm into $OPERATOR_NS"
restricted_namespace "$OPERATOR_NS"
helm upgrade --install "$RELEASE" helm/pizza-operator -n "$OPERATOR_NS" --wait --timeout 180s
kubectl -n "$OPERATOR_NS" get pods -o wide

step "helm test $RELEASE (the operator answers on its metrics Service)"
helm test "$RELEASE" -n "$OPERATOR_NS" --timeout 120s

step "the local sample ($SAMPLE) in $APP_NS, until Ready"
restricted_namespace "$APP_NS"
applied=$(date +%s.%N)
kubectl -n "$APP_NS" apply -f "$SAMPLE"
kubectl -n "$APP_NS" wait --for=condition=Ready pmd/pizza-classifier --timeout=300s
awk -v s="$applied" -v e="$(date +%s.%N)" 'BEGIN { printf "Ready %.1f s after kubectl apply\n", e - s }'
kubectl -n "$APP_NS" get pmd,deploy,svc
kubectl -n "$APP_NS" get pods -o wide

router_ip=$(kubectl -n "$APP_NS" get svc pizza-classifier -o jsonpath='{.spec.clusterIP}')
router_port=$(kubectl -n "$APP_NS" get svc pizza-classifier -o jsonpath='{.spec.ports[0].port}')
ROUTER="http://$router_ip:$router_port"

# Ready waits until the Services' EndpointSlices list ready endpoints; kube-proxy's rules follow
# the slices within its minSyncPeriod (docs/operator.md, "Ready means answering"). A safety
# check: the Service answers now, or within 2 s, and the demo says which.
ready=$(date +%s.%N)
tries=0
until curl -sf -o /dev/null --max-time 2 "$ROUTER/v2/health/ready"; do
  tries=$((tries + 1))
  if ((tries == 10)); then
    echo "the router Service $ROUTER does not answer 2 s after Ready" >&2
    exit 1
  fi
  sleep 0.2
done
awk -v s="$ready" -v e="$(date +%s.%N)" -v t="$tries" \
  'BEGIN { printf "the router Service answered %.2f s after Ready (%d failed tries before)\n", e - s, t }'

classify() {  # classify FILE...
  for image in "$@"; do
    curl -sS --max-time 30 -F "file=@$image;type=image/png" "$ROUTER/classify" |
      "$PY" -c '
import json, sys
r = json.load(sys.stdin)
if "predicted_class" not in r:
    print("  {:<26} -> error {}".format(sys.argv[1], r)); sys.exit(0)
line = "  {:<26} -> {:<12} confidence {:.3f}  model_used={:<20} fallback_reason={}"
print(line.format(sys.argv[1], r["predicted_class"], r["confidence"], r["model_used"], r.get("fallback_reason")))
' "$(basename "$(dirname "$image")")/$(basename "$image")"
  done
}

step "fresh pizza images (pizza-data generate --seed 777), classified through the router Service $ROUTER"
rm -rf "$WORK/images"
mkdir -p "$WORK"
pizza-data generate --seed 777 --count 1 --out "$WORK/images" >/dev/null
images=("$WORK"/images/*/*.png)
first=$(elapsed)
classify "${images[@]}"
echo "first answer through the router at $first s into the demo"

primary_pod=$(kubectl -n "$APP_NS" get pods -l app.kubernetes.io/component=primary \
  -o jsonpath='{.items[0].metadata.name}')
step "the primary hangs: SIGSTOP on every process of $primary_pod's container"
"$PY" -m pizza_load.freeze stop "$APP_NS/$primary_pod"
trap '"$PY" -m pizza_load.freeze cont "$APP_NS/$primary_pod" >/dev/null 2>&1 || true' EXIT
classify "${images[@]}"

step "the primary thawed (SIGCONT): answers come from it again"
"$PY" -m pizza_load.freeze cont "$APP_NS/$primary_pod"
trap - EXIT
for _ in $(seq 1 30); do
  curl -sS --max-time 5 "$ROUTER/status" 2>/dev/null | grep -q '"primary"' && break
  sleep 1
done
classify "${images[@]:0:3}"

step "automatic rollback: the primary hangs for good under load; the operator rolls back to stable on its own"
"$PY" hack/demo_rollback.py "$KUBECONFIG" "$APP_NS" pizza-classifier
kubectl -n "$APP_NS" get events --field-selector involvedObject.kind=PizzaModelDeployment \
  -o custom-columns=TYPE:.type,REASON:.reason,MESSAGE:.message | tail -4

step "what the router counted (its /metrics)"
router_pod=$(kubectl -n "$APP_NS" get pods -l app.kubernetes.io/component=router \
  -o jsonpath='{.items[0].status.podIP}')
curl -fsS "http://$router_pod:$router_port/metrics" | grep -E '^pizza_api_(fallback_total|requests_total)' | head -12 || true

step "done in $(elapsed) s; memory of the local cluster"
"$PY" -m pizza_devcluster status --dir .cluster | tail -25 || true

cat <<MSG

Try:
  export KUBECONFIG=$KUBECONFIG
  kubectl -n $APP_NS get pmd pizza-classifier -o yaml
  kubectl -n $APP_NS get pods -o wide
  curl -F file=@${images[0]} $ROUTER/classify
  kubectl -n $OPERATOR_NS logs deploy/$RELEASE

Stop everything (the sample, the operator, the nodes and the control plane):
  make demo-down
MSG
