#!/usr/bin/env bash
# The main job on one machine, no cluster: build msctl, run the four bundled
# services with msctl up (processes on SQLite, a gateway, an embedded
# Prometheus engine), place an order, then canary payment twice under
# built-in load: once with a 20% injected error rate (rolled back
# automatically, exit 3) and once healthy (promoted), then stop everything.
# The cluster demo is hack/demo-cluster.sh (make demo-cluster).
set -euo pipefail
cd "$(dirname "$0")/.."
say() { printf '\n\033[1mdemo:\033[0m %s\n' "$*" >&2; }
if [ -n "${NO_COLOR:-}" ] || [ ! -t 2 ]; then say() { printf '\ndemo: %s\n' "$*" >&2; }; fi

# Ports of the local runtime (gateway, metrics, then ten per service).
base=${MSCTL_DEMO_PORT_BASE:-17000}
run=.msctl/run
started=$(date +%s)

say "building msctl"
make -s build
msctl() { bin/msctl "$@"; }

say "starting the four services, the gateway and the metrics engine (msctl up -d)"
msctl up -d --port-base "$base" -o json > /dev/null
trap 'say "stopping everything (msctl down)"; msctl down > /dev/null' EXIT
say "everything is ready: the gateway is http://127.0.0.1:$base, state and logs are in $run"

say "placing orders through the gateway (msctl load: a user, a product, then orders; order calls user, inventory and payment)"
msctl load --rate 2 --duration 2s --route /api/v1/orders

say "a bad canary: payment with 20% of its calls failing (FAULT_ERROR_RATE=0.2), under built-in load; msctl should roll it back by itself"
set +e
msctl canary run payment --local --env FAULT_ERROR_RATE=0.2 --load 100 --timeout 2m > /dev/null
code=$?
set -e
if [ "$code" -ne 3 ]; then
  say "expected the canary to be rolled back (exit 3), got exit $code"
  exit 1
fi
say "rolled back (exit 3): traffic went back to the stable and the canary process stopped"

say "why: the last checks of that canary (msctl canary explain payment --local)"
msctl canary explain payment --local | tail -n 14

# The checks look at the last interval (5s) of payment-canary's requests:
# the next canary starts once none of this one's are in it.
sleep 5

say "a healthy canary: payment without the fault, step by step to 100%, then promoted"
msctl canary run payment --local --env FAULT_ERROR_RATE=0 --load 100 --timeout 2m > /dev/null
say "promoted (exit 0): the canary's process is now payment's stable"
msctl canary status payment --local -o json | sed -n 's/^    "\(phase\|reason\)": "\(.*\)",$/  \1: \2/p'

say "done in $(( $(date +%s) - started ))s"
