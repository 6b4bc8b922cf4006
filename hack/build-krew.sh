#!/usr/bin/env bash
# Builds krew, the kubectl plugin manager, from the Go module proxy into the same cache as the cluster's components
# (hack/localcluster/build.sh), keyed by krew's version and the Go toolchain: a second run does nothing.
# tests/e2e/test_krew.py installs the plugin with it, offline (--manifest and --archive).
#   usage: build-krew.sh      prints the bin folder on stdout; it holds `krew` and `kubectl-krew` (the same file)
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
source "$here/localcluster/lib.sh"

# v0.4.5 is not served by the module proxy (403); v0.4.4 is the newest release it has.
KREW_VERSION=${KREW_VERSION:-v0.4.4}
command -v go >/dev/null || die "Go is required to build krew (https://go.dev/dl)"
out="$KUBELESS_CACHE/bin/krew-$KREW_VERSION-$(go env GOVERSION)"
if [[ ! -f $out/.complete ]]; then
  t0=$SECONDS
  log "building krew $KREW_VERSION ..."
  rm -rf "$out.tmp" && mkdir -p "$out.tmp"
  # krew's go.mod has no replace directives, so `go install pkg@version` builds it without a wrapper module.
  # No version is stamped on purpose: krew then counts as a development build, which never runs its background
  # "is there a newer krew?" request to GitHub (the tests also set KREW_NO_UPGRADE_CHECK).
  GOBIN="$out.tmp" GOFLAGS=-mod=mod GOTOOLCHAIN=local CGO_ENABLED=0 \
    go install -trimpath -ldflags "-s -w" "sigs.k8s.io/krew/cmd/krew@$KREW_VERSION" >&2
  # kubectl runs plugins named kubectl-<name>: `kubectl krew ...`
  cp "$out.tmp/krew" "$out.tmp/kubectl-krew"
  rm -rf "$out" && mv "$out.tmp" "$out" && touch "$out/.complete"
  log "built krew $KREW_VERSION in $((SECONDS - t0)) s"
fi
echo "$out"
