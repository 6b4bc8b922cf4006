#!/usr/bin/env bash
# Builds the local cluster's upstream components from the Go module proxy into a cache folder keyed by version.
# A second run with the same versions does nothing.
#   usage: build.sh [NAME...]  prints the bin folder of each component (or only of those named) on stdout
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
source "$here/versions.env"
source "$here/lib.sh"

gov=$(go env GOVERSION)
export GOFLAGS=-mod=mod GOTOOLCHAIN=local
wanted=("$@")

# wanted NAME: true when no names were given or NAME is one of them.
wanted() { [[ ${#wanted[@]} == 0 || " ${wanted[*]} " == *" $1 "* ]]; }

# downloaded MODULE VERSION FIELD: where the module cache holds that version (downloading it): FIELD GoMod is its
# go.mod, Dir its extracted zip.
downloaded() {
  go mod download -json "$1@$2" | python3 -c 'import json,sys; print(json.load(sys.stdin)[sys.argv[1]])' "$3"
}

# bin_folder NAME VERSION: the cache folder of a component's binaries, keyed by its version and the Go toolchain.
bin_folder() { echo "$KUBELESS_CACHE/bin/$1-$2-$gov"; }

# carried_directives GOMOD: `go mod edit` flags repeating GOMOD's exclude lines and its replace lines that name a
# published module version. Go ignores both in a dependency's go.mod, yet the module builds only with them (Traefik's
# forks). Replaces with a local path are left out: they point into the module's own repository (etcd's siblings
# resolve through their require lines, Kubernetes' staging modules are mapped by the caller).
carried_directives() {
  go mod edit -json "$1" | python3 -c '
import json, sys
gomod = json.load(sys.stdin)
def at(module):
    return module["Path"] + ("@" + module["Version"] if module.get("Version") else "")
for replace in gomod.get("Replace") or []:
    if replace["New"].get("Version"):
        print("-replace=" + at(replace["Old"]) + "=" + at(replace["New"]))
for exclude in gomod.get("Exclude") or []:
    print("-exclude=" + at(exclude))'
}

# wrapper_build NAME MODULE VERSION CGO TAGS LDFLAGS PKG...: build main packages of MODULE@VERSION through a
# throwaway wrapper module that requires it and repeats its carried_directives. `go install pkg@v` refuses modules
# whose go.mod has replace directives, and a wrapper also lets Kubernetes map its staging modules to their published
# versions.
wrapper_build() {
  local name=$1 module=$2 version=$3 cgo=$4 tags=$5 ldflags=$6; shift 6
  wanted "$name" || return 0
  local out; out=$(bin_folder "$name" "$version")
  if [[ -f $out/.complete ]]; then echo "$out"; return; fi
  local t0=$SECONDS work; work=$(mktemp -d)
  log "building $name $version (cold build, this takes a while) ..."
  (
    cd "$work"
    go mod init local/build-$name >/dev/null 2>&1
    go mod edit -require="$module@$version"
    local gomod directives
    gomod=$(downloaded "$module" "$version" GoMod)
    directives=$(carried_directives "$gomod")
    # shellcheck disable=SC2086  # one flag per word
    [[ -z $directives ]] || go mod edit $directives
    if [[ $module == k8s.io/kubernetes ]]; then
      # Every staging module k8s.io/X is published as k8s.io/X v0.<minor>.<patch>; read the list from the real go.mod.
      local staging=v0.${version#v1.}
      for m in $(sed -n 's#^[[:space:]]*\(k8s.io/[a-z0-9-]*\) => \./staging/.*#\1#p' "$gomod"); do
        go mod edit -replace="$m=$m@$staging"
      done
    fi
    # Each package at VERSION: without one `go get` means @upgrade and would silently build the module's newest release.
    go get "${@/%/@$version}"
    mkdir -p "$out.tmp"
    CGO_ENABLED=$cgo go build -trimpath -tags "$tags" -ldflags "-s -w $ldflags" -o "$out.tmp/" "$@"
  ) >&2
  [[ -f $out.tmp/server ]] && mv "$out.tmp/server" "$out.tmp/$name"  # etcd's main package is .../server/v3
  rm -rf "$work" "$out"; mv "$out.tmp" "$out"; touch "$out/.complete"
  log "built $name $version in $((SECONDS - t0)) s"
  echo "$out"
}

# traefik_crds BINARY VERSION: a folder with the CRDs Traefik's providers watch, taken from the module zips: Traefik's
# own (kubernetescrd: Middleware and the rest) and the Gateway API's standard channel, at the Gateway API version
# compiled into BINARY (its build info), which is the one Traefik's go.mod requires.
traefik_crds() {
  local binary=$1 version=$2 out="$KUBELESS_CACHE/manifests/traefik-$2"
  if [[ ! -f $out/.complete ]]; then
    local gateway_api traefik_dir gateway_dir
    gateway_api=$(go version -m "$binary" | awk '$1 == "dep" && $2 == "sigs.k8s.io/gateway-api" {print $3}')
    [[ -n $gateway_api ]] || die "$binary has no sigs.k8s.io/gateway-api in its build info"
    traefik_dir=$(downloaded github.com/traefik/traefik/v3 "$version" Dir)
    gateway_dir=$(downloaded sigs.k8s.io/gateway-api "$gateway_api" Dir)
    rm -rf "$out.tmp" && mkdir -p "$out.tmp"
    cat "$traefik_dir/docs/content/reference/dynamic-configuration/kubernetes-crd-definition-v1.yml" \
      >"$out.tmp/traefik-crds.yaml"
    for crd in "$gateway_dir"/config/crd/standard/*.yaml; do echo "---"; cat "$crd"; done >"$out.tmp/gateway-api-crds.yaml"
    rm -rf "$out"; mv "$out.tmp" "$out"; touch "$out/.complete"
  fi
  echo "$out"
}

kv=v$KUBERNETES_VERSION
kminor=$(echo "$KUBERNETES_VERSION" | cut -d. -f2)
kld="-X k8s.io/component-base/version.gitVersion=$kv -X k8s.io/component-base/version.gitMajor=1 \
-X k8s.io/component-base/version.gitMinor=$kminor -X k8s.io/component-base/version.gitTreeState=clean \
-X k8s.io/client-go/pkg/version.gitVersion=$kv -X k8s.io/client-go/pkg/version.gitMajor=1 \
-X k8s.io/client-go/pkg/version.gitMinor=$kminor"

t0=$SECONDS
wrapper_build kubernetes k8s.io/kubernetes "$kv" 0 "" "$kld" \
  k8s.io/kubernetes/cmd/kube-apiserver k8s.io/kubernetes/cmd/kube-controller-manager \
  k8s.io/kubernetes/cmd/kube-scheduler k8s.io/kubernetes/cmd/kubelet k8s.io/kubernetes/cmd/kube-proxy \
  k8s.io/kubernetes/cmd/kubectl
wrapper_build etcd go.etcd.io/etcd/server/v3 "v$ETCD_VERSION" 0 "" "" go.etcd.io/etcd/server/v3
wrapper_build containerd github.com/containerd/containerd/v2 "v$CONTAINERD_VERSION" 0 "no_btrfs no_devmapper no_zfs" \
  "-X github.com/containerd/containerd/v2/version.Version=v$CONTAINERD_VERSION" \
  github.com/containerd/containerd/v2/cmd/containerd github.com/containerd/containerd/v2/cmd/containerd-shim-runc-v2 \
  github.com/containerd/containerd/v2/cmd/ctr
wrapper_build cni-plugins github.com/containernetworking/plugins "v$CNI_PLUGINS_VERSION" 0 "" "" \
  github.com/containernetworking/plugins/plugins/main/bridge github.com/containernetworking/plugins/plugins/main/loopback \
  github.com/containernetworking/plugins/plugins/ipam/host-local github.com/containernetworking/plugins/plugins/meta/portmap
wrapper_build coredns github.com/coredns/coredns "v$COREDNS_VERSION" 0 "" "" github.com/coredns/coredns
# The ingress controller. Traefik's web UI is not built: the placeholder that its `//go:embed static` needs is in the
# module zip.
tv=v$TRAEFIK_VERSION
wrapper_build traefik github.com/traefik/traefik/v3 "$tv" 0 "" \
  "-X github.com/traefik/traefik/v3/pkg/version.Version=$tv" github.com/traefik/traefik/v3/cmd/traefik
if wanted traefik; then traefik_crds "$(bin_folder traefik "$tv")/traefik" "$tv"; fi
(( SECONDS - t0 > 5 )) && log "component build took $((SECONDS - t0)) s" || true
