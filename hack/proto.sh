#!/usr/bin/env bash
# Regenerates the services' Go code from their protos (make proto). For every
# services/<svc>/api/<pkg>/<name>.proto it writes <name>.pb.go and
# <name>_grpc.pb.go, and <name>.pb.gw.go when a sibling <name>_gateway.yaml
# (grpc-gateway's gRPC API configuration) maps HTTP routes.
#
# Deterministic on purpose: CI's proto-check regenerates and fails on any
# diff. So protoc is Debian's (one version per release) and each plugin is
# pinned and installed once into a cache directory keyed by its version.
set -euo pipefail
cd "$(dirname "$0")/.."

PROTOC_GEN_GO_VERSION=v1.36.12
PROTOC_GEN_GO_GRPC_VERSION=v1.6.2
PROTOC_GEN_GRPC_GATEWAY_VERSION=v2.33.0

tools="${XDG_CACHE_HOME:-$HOME/.cache}/msctl/tools"
protoc=/usr/bin/protoc
include=/usr/include

[ -x "$protoc" ] || { echo "proto: $protoc not found: run make deps (Debian package protobuf-compiler)" >&2; exit 1; }
[ -f "$include/google/protobuf/timestamp.proto" ] || {
  echo "proto: well-known types not found under $include: install Debian package libprotobuf-dev" >&2; exit 1; }

# install NAME VERSION PACKAGE: prints the plugin's path, building it once.
install() {
  local name=$1 version=$2 pkg=$3
  local dir="$tools/$name-$version"
  if [ ! -x "$dir/$name" ]; then
    echo "proto: installing $name $version" >&2
    GOBIN="$dir" GOFLAGS=-mod=mod go install "$pkg@$version" >&2
  fi
  echo "$dir/$name"
}

gen_go=$(install protoc-gen-go "$PROTOC_GEN_GO_VERSION" google.golang.org/protobuf/cmd/protoc-gen-go)
gen_grpc=$(install protoc-gen-go-grpc "$PROTOC_GEN_GO_GRPC_VERSION" google.golang.org/grpc/cmd/protoc-gen-go-grpc)
gen_gw=$(install protoc-gen-grpc-gateway "$PROTOC_GEN_GRPC_GATEWAY_VERSION" github.com/grpc-ecosystem/grpc-gateway/v2/protoc-gen-grpc-gateway)

shopt -s nullglob
protos=(services/*/api/*/*.proto)
if [ ${#protos[@]} -eq 0 ]; then
  echo "proto: no services/*/api/*/*.proto found" >&2
  exit 1
fi

# Generated files of a deleted proto must not linger.
rm -f services/*/api/*/*.pb.go services/*/api/*/*.pb.gw.go

for proto in "${protos[@]}"; do
  dir=$(dirname "$proto")
  name=$(basename "$proto" .proto)
  args=(
    -I . -I "$include"
    --plugin=protoc-gen-go="$gen_go" --go_out=. --go_opt=paths=source_relative
    --plugin=protoc-gen-go-grpc="$gen_grpc" --go-grpc_out=. --go-grpc_opt=paths=source_relative
  )
  gateway="$dir/${name}_gateway.yaml"
  if [ -f "$gateway" ]; then
    args+=(
      --plugin=protoc-gen-grpc-gateway="$gen_gw" --grpc-gateway_out=.
      --grpc-gateway_opt=paths=source_relative
      --grpc-gateway_opt=grpc_api_configuration="$gateway"
    )
  fi
  echo "proto: $proto" >&2
  "$protoc" "${args[@]}" "$proto"
done
