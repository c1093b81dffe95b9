#!/usr/bin/env bash
# Whole-process wall time and peak memory of msctl commands beside the Helm v4
# CLI doing the same job on the same machine:
#   msctl version / --help   vs  helm version
#   msctl render (4 services, chart + Istio + monitoring)  vs  helm template (1 service)
# Usage: hack/bench/cli.sh   (needs hyperfine and GNU time: apt-get install hyperfine time)
set -euo pipefail
cd "$(dirname "$0")/../.."

HELM_VERSION=v4.3.1
cache="${XDG_CACHE_HOME:-$HOME/.cache}/msctl/tools/helm-$HELM_VERSION"
helm="$cache/helm"
if [ ! -x "$helm" ]; then
  GOBIN="$cache" go install "helm.sh/helm/v4/cmd/helm@$HELM_VERSION"
fi
make -s build

apis="--api-versions monitoring.coreos.com/v1/ServiceMonitor --api-versions monitoring.coreos.com/v1/PrometheusRule --api-versions autoscaling.k8s.io/v1/VerticalPodAutoscaler"
render="bin/msctl render $apis"
template="$helm template user manifests/charts/service --namespace shop --set name=user,image.repository=localhost:5000/user $apis"

hyperfine --warmup 5 --runs 50 -N --export-markdown /dev/stdout \
  'bin/msctl version' 'bin/msctl --help' "$helm version"
hyperfine --warmup 3 --runs 30 -N --export-markdown /dev/stdout "$render" "$template"

for cmd in 'bin/msctl version' "$helm version" "$render" "$template"; do
  # shellcheck disable=SC2086
  kb=$(/usr/bin/time -f %M $cmd 2>&1 >/dev/null | tail -n1)
  echo "peak RSS of '${cmd%% --*}': ${kb} KiB"
done
