#!/usr/bin/env bash
# Whole-process wall time and peak memory of `msctl version` and `msctl
# --help`, beside `helm version` (Helm v4 CLI) on the same machine.
# Usage: hack/bench/startup.sh   (needs hyperfine and GNU time: apt-get install hyperfine time)
set -euo pipefail
cd "$(dirname "$0")/../.."

HELM_VERSION=v4.3.1
cache="${XDG_CACHE_HOME:-$HOME/.cache}/msctl/tools/helm-$HELM_VERSION"
helm="$cache/helm"
if [ ! -x "$helm" ]; then
  GOBIN="$cache" go install "helm.sh/helm/v4/cmd/helm@$HELM_VERSION"
fi
make -s build

hyperfine --warmup 5 --runs 50 -N --export-markdown /dev/stdout \
  'bin/msctl version' 'bin/msctl --help' "$helm version"

for cmd in 'bin/msctl version' "$helm version"; do
  # shellcheck disable=SC2086
  kb=$(/usr/bin/time -f %M $cmd 2>&1 >/dev/null | tail -n1)
  echo "peak RSS of '$cmd': ${kb} KiB"
done
