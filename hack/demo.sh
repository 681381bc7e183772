#!/usr/bin/env bash
# `make demo`: local control plane, CRDs + RBAC, the operator as a local background process,
# the sample PizzaModelDeployment until Ready. `make demo-down` (= `hack/demo.sh down` and
# `make cluster-down`) stops the operator and the control plane.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT="$PWD"
export PATH="$ROOT/.bin:$ROOT/.venv/bin:$PATH"
export KUBECONFIG="$ROOT/.cluster/kubeconfig"
PID_FILE="$ROOT/.cluster/operator.pid"
LOG_FILE="$ROOT/.cluster/operator.log"
METRICS_PORT="${OPERATOR_METRICS_PORT:-9090}"
LIVENESS_PORT="${OPERATOR_LIVENESS_PORT:-8080}"
KUBECTL="${KUBECTL:-kubectl}"

step() { printf '\n\033[1m==> %s\033[0m\n' "$*"; }

operator_running() {
  [[ -f "$PID_FILE" ]] && kill -0 "$(cat "$PID_FILE")" 2>/dev/null
}

stop_operator() {
  if operator_running; then
    local pid
    pid="$(cat "$PID_FILE")"
    step "stopping the operator (pid $pid)"
    kill -TERM "$pid"
    for _ in $(seq 1 40); do kill -0 "$pid" 2>/dev/null || break; sleep 0.5; done
    kill -0 "$pid" 2>/dev/null && kill -KILL "$pid"
  else
    echo "operator not running"
  fi
  rm -f "$PID_FILE"
}

if [[ "${1:-up}" == "down" ]]; then
  bash hack/demo-serving.sh down
  stop_operator
  exit 0
fi

step "starting the local control plane (make cluster-up; the first build of the binaries takes long)"
make --no-print-directory cluster-up
"$KUBECTL" get nodes -o wide

step "installing the CRDs (crds/)"
"$KUBECTL" apply --server-side --force-conflicts -f crds/
"$KUBECTL" wait --for=condition=Established crd/pizzamodeldeployments.pizza.ai --timeout=60s

step "applying the operator's RBAC (manifests/rbac.yaml; the local operator uses the admin kubeconfig)"
"$KUBECTL" apply -f manifests/rbac.yaml

step "starting the operator in the background (log: .cluster/operator.log, pid: .cluster/operator.pid)"
if operator_running; then
  echo "already running (pid $(cat "$PID_FILE"))"
else
  nohup "$ROOT/.venv/bin/pizza-operator" \
    --metrics-port "$METRICS_PORT" --liveness-port "$LIVENESS_PORT" \
    --default-image pizza-operator:0.1.0 >"$LOG_FILE" 2>&1 &
  echo $! >"$PID_FILE"
  for _ in $(seq 1 60); do
    if curl -fsS "http://127.0.0.1:$LIVENESS_PORT/healthz" >/dev/null 2>&1; then break; fi
    operator_running || { echo "the operator exited; see $LOG_FILE"; tail -20 "$LOG_FILE"; exit 1; }
    sleep 0.5
  done
  echo "operator up (pid $(cat "$PID_FILE")), metrics on http://127.0.0.1:$METRICS_PORT/metrics"
fi

step "applying the sample (manifests/samples/pizza-classifier.yaml)"
"$KUBECTL" apply -f manifests/samples/pizza-classifier.yaml

step "waiting for Ready (kubectl wait --for=condition=Ready pmd/pizza-classifier)"
start=$(date +%s.%N)
"$KUBECTL" wait --for=condition=Ready pmd/pizza-classifier --timeout=180s
awk -v s="$start" -v e="$(date +%s.%N)" 'BEGIN { printf "Ready after %.1f s\n", e - s }'

step "what the operator built"
"$KUBECTL" get pmd,deploy,svc,pdb,pods -o wide

step "events of the resource"
"$KUBECTL" get events --field-selector involvedObject.name=pizza-classifier

bash hack/demo-serving.sh

cat <<MSG

Try:
  export KUBECONFIG=$KUBECONFIG
  kubectl explain pmd.spec.primary.model
  kubectl delete deploy pizza-classifier-fallback     # the operator brings it back
  curl -s localhost:$METRICS_PORT/metrics | grep pizza_operator_
  tail -f .cluster/operator.log

Stop everything (the servers, the operator and the control plane):
  make demo-down
MSG
