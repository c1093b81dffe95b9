#!/usr/bin/env bash
# Decision quality of canary analysis, recorded in docs/benchmarks.md under
# "Canary decisions": scenarios replayed with seeded random traffic, scored
# side by side on the same requests for msctl's sequential test and
# Flagger's point-estimate rule (decision: threshold, maxFailedChecks 2).
# Both call internal/analysis's Decide. The seeds are printed with the
# figures; the same arguments give the same figures.
# Usage: hack/bench/canary.sh [RUNS] [SEED]   (default 1000 1)
set -euo pipefail
cd "$(dirname "$0")/../.."
go run ./hack/bench/canarysim -runs "${1:-1000}" -seed "${2:-1}"
