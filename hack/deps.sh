#!/usr/bin/env bash
# Installs what the tests need on a fresh Debian machine and starts the local
# services they talk to. Idempotent: a second run installs and starts nothing.
set -euo pipefail

# Debian packages: protoc and the well-known types (make proto and its drift
# check), promtool (alert rules), a real OCI registry and two clients that
# share no code with msctl, skopeo and umoci (image build tests).
packages=(protobuf-compiler libprotobuf-dev prometheus docker-registry skopeo umoci)
missing=()
for p in "${packages[@]}"; do
  dpkg -s "$p" >/dev/null 2>&1 || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  sudo=""
  [ "$(id -u)" -eq 0 ] || sudo="sudo"
  echo "deps: installing ${missing[*]}" >&2
  $sudo apt-get update -qq
  # Packaged daemons must not start on install: the tests run their own
  # instances on free loopback ports.
  printf '#!/bin/sh\nexit 101\n' | $sudo tee /usr/sbin/policy-rc.d >/dev/null
  $sudo chmod +x /usr/sbin/policy-rc.d
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
  $sudo rm -f /usr/sbin/policy-rc.d
fi

# PostgreSQL on 127.0.0.1:5432 with trust auth, for the store contract tests.
if ! pg_isready -q -h 127.0.0.1 -p 5432 2>/dev/null; then
  if command -v pg_ctlcluster >/dev/null && [ -d /etc/postgresql ]; then
    echo "deps: starting PostgreSQL" >&2
    pg_ctlcluster --skip-systemctl-redirect "$(ls /etc/postgresql | sort -V | tail -n1)" main start
    for _ in $(seq 1 30); do pg_isready -q -h 127.0.0.1 -p 5432 && break; sleep 1; done
  fi
  pg_isready -h 127.0.0.1 -p 5432 >/dev/null || { echo "deps: PostgreSQL is not reachable on 127.0.0.1:5432" >&2; exit 1; }
fi
