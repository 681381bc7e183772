#!/usr/bin/env bash
# The second half of `make demo`: the inference plane for real. kwok runs no containers, so the
# servers the operator's pods would run are started here as local processes with the same
# command and the shipped weights: a primary (the trained ConvNeXt image classifier standing in
# for the GPU model), the INT8 MicroPizzaNet fallback, and the router in front of them. Then fresh
# pizza images (never seen in training) are classified through the router, the primary is
# stopped, and the same request is answered by the fallback, which says so.
#   hack/demo-serving.sh        start and show
#   hack/demo-serving.sh down   stop the three servers
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT="$PWD"
STATE="$ROOT/.cluster/serving"
ROUTER_PORT="${DEMO_ROUTER_PORT:-18001}"
PRIMARY_PORT="${DEMO_PRIMARY_PORT:-18002}"
FALLBACK_PORT="${DEMO_FALLBACK_PORT:-18003}"
SERVE="$ROOT/.venv/bin/pizza-serve"
mkdir -p "$STATE"

step() { printf '\n\033[1m==> %s\033[0m\n' "$*"; }

stop() {  # stop NAME
  local pid_file="$STATE/$1.pid"
  if [[ -f "$pid_file" ]] && kill -0 "$(cat "$pid_file")" 2>/dev/null; then
    kill -TERM "$(cat "$pid_file")"
    for _ in $(seq 1 20); do kill -0 "$(cat "$pid_file")" 2>/dev/null || break; sleep 0.25; done
    kill -KILL "$(cat "$pid_file")" 2>/dev/null || true
    echo "stopped $1"
  fi
  rm -f "$pid_file"
}

start() {  # start NAME PORT ARGS...
  local name=$1 port=$2
  shift 2
  stop "$name"
  PIZZA_HOST=127.0.0.1 PIZZA_PORT="$port" nohup "$SERVE" "$@" >"$STATE/$name.log" 2>&1 &
  echo $! >"$STATE/$name.pid"
  echo "$name: pizza-serve $* on 127.0.0.1:$port (log .cluster/serving/$name.log)"
}

wait_ready() {  # wait_ready NAME PORT
  for _ in $(seq 1 240); do
    if curl -fsS "http://127.0.0.1:$2/v2/health/ready" >/dev/null 2>&1; then
      echo "$1 ready"
      return 0
    fi
    kill -0 "$(cat "$STATE/$1.pid")" 2>/dev/null || { echo "$1 exited:"; tail -20 "$STATE/$1.log"; exit 1; }
    sleep 0.5
  done
  echo "$1 not ready after 120 s"; tail -20 "$STATE/$1.log"; exit 1
}

classify() {  # classify FILE
  curl -fsS -F "file=@$1;type=image/png" "http://127.0.0.1:$ROUTER_PORT/classify" |
    "$ROOT/.venv/bin/python" -c '
import json, sys
r = json.load(sys.stdin)
line = "  {:<26} -> {:<12} confidence {:.3f}  model_used={}  fallback_reason={}"
print(line.format(sys.argv[1], r["predicted_class"], r["confidence"], r["model_used"], r.get("fallback_reason")))
' "$(basename "$(dirname "$1")")/$(basename "$1")"
}

if [[ "${1:-up}" == "down" ]]; then
  for name in router primary fallback; do stop "$name"; done
  exit 0
fi

step "the inference plane, as local processes (kwok pods run no containers)"
start primary "$PRIMARY_PORT" model --backend image-classifier --source builtin://pizza-convnext-tiny \
  --model-name pizza-convnext-tiny
start fallback "$FALLBACK_PORT" model --backend cnn --source builtin://micro-pizza-net --precision int8
start router "$ROUTER_PORT" router --primary "http://127.0.0.1:$PRIMARY_PORT" \
  --fallback "http://127.0.0.1:$FALLBACK_PORT" --primary-timeout-seconds 5
wait_ready primary "$PRIMARY_PORT"
wait_ready fallback "$FALLBACK_PORT"
wait_ready router "$ROUTER_PORT"

step "fresh pizza images (pizza-data generate --seed 777 --count 1), classified through the router"
rm -rf "$STATE/images"
"$ROOT/.venv/bin/pizza-data" generate --seed 777 --count 1 --out "$STATE/images" >/dev/null
for image in "$STATE"/images/*/*.png; do classify "$image"; done

step "the primary goes away: the router answers from the INT8 fallback and says why"
stop primary
for image in "$STATE"/images/*/*.png; do classify "$image"; done

step "what the router counted (GET /metrics, Prometheus text)"
curl -fsS "http://127.0.0.1:$ROUTER_PORT/metrics" | grep -E '^pizza_api_(fallback_total|requests_total)' | head -12

example=$(ls "$STATE"/images/burnt/*.png | head -1)
cat <<MSG

The router and the fallback keep running on 127.0.0.1:$ROUTER_PORT and :$FALLBACK_PORT:
  curl -F file=@$example localhost:$ROUTER_PORT/classify
  curl localhost:$ROUTER_PORT/status
MSG
