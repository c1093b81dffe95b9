#!/usr/bin/env bash
# msctl up -d with the services' binaries already built: start of the command
# to all four services ready (the command returns only then), in two forms:
#   --no-build  the binaries as they are
#   (default)   go build's up-to-date check of each binary first
# Each run is followed by msctl down. RUNS runs of each (default 10), on
# port base PORT_BASE (default 23000).
# Usage: hack/bench/up.sh
set -euo pipefail
cd "$(dirname "$0")/../.."
make -s build
base=${PORT_BASE:-23000}
runs=${RUNS:-10}
msctl=bin/msctl
"$msctl" down >/dev/null 2>&1 || true
"$msctl" up -d -q --port-base "$base" >/dev/null # builds the binaries once
"$msctl" down >/dev/null

bench() {
  local label=$1; shift
  for _ in $(seq "$runs"); do
    start=$(date +%s.%N)
    "$msctl" up -d -q --port-base "$base" "$@" >/dev/null
    end=$(date +%s.%N)
    "$msctl" down >/dev/null
    echo "$start $end"
  done | awk -v label="$label" '{ t = $2 - $1; s += t; if (NR == 1 || t < lo) lo = t; if (t > hi) hi = t }
    END { printf "| `msctl up -d %s` | %.2f s | %.2f s | %.2f s | %d |\n", label, s / NR, lo, hi, NR }'
}
echo "| Command | Mean | Min | Max | Runs |"
echo "|---|---|---|---|---|"
bench "--no-build" --no-build
bench "(build check)"
