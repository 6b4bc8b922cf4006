#!/usr/bin/env bash
# Installs what the project needs on a fresh Debian machine: apt packages, then a Python virtualenv in the cache folder
# keyed by the requirements, so a second run is a no-op. Prints the virtualenv's path on stdout.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
source "$here/localcluster/lib.sh"

apt_packages=(iptables runc conntrack openssl gcc libc6-dev wrk curl ca-certificates)
missing=()
for p in "${apt_packages[@]}"; do dpkg -s "$p" >/dev/null 2>&1 || missing+=("$p"); done
if ((${#missing[@]})); then
  log "apt-get install ${missing[*]}"
  apt-get update -qq >&2
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >&2
fi
command -v go >/dev/null || die "Go is required to build the cluster's components (https://go.dev/dl)"

requirements="$here/../requirements-dev.txt"
venv="$KUBELESS_CACHE/venv-$(cat "$requirements" | sha256sum | cut -c1-12)"
if [[ ! -f $venv/.complete ]]; then
  log "creating $venv"
  rm -rf "$venv"
  python3 -m venv "$venv" >&2
  "$venv/bin/pip" install -q --disable-pip-version-check -r "$requirements" >&2
  touch "$venv/.complete"
fi
echo "$venv"
