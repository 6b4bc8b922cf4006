#!/usr/bin/env bash
# Builds the local cluster's upstream components from the Go module proxy into a cache folder keyed by version.
# A second run with the same versions does nothing.
#   usage: build.sh            prints the bin folder of each component on stdout
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
source "$here/versions.env"
source "$here/lib.sh"

gov=$(go env GOVERSION)
export GOFLAGS=-mod=mod GOTOOLCHAIN=local

# wrapper_build NAME MODULE VERSION CGO TAGS LDFLAGS PKG...: build main packages of MODULE@VERSION through a
# throwaway wrapper module. `go install pkg@v` refuses modules whose go.mod has replace directives, and a wrapper
# also lets Kubernetes map its staging modules to their published versions.
wrapper_build() {
  local name=$1 module=$2 version=$3 cgo=$4 tags=$5 ldflags=$6; shift 6
  local out="$KUBELESS_CACHE/bin/$name-$version-$gov"
  if [[ -f $out/.complete ]]; then echo "$out"; return; fi
  local t0=$SECONDS work; work=$(mktemp -d)
  log "building $name $version (cold build, this takes a while) ..."
  (
    cd "$work"
    go mod init local/build-$name >/dev/null 2>&1
    go mod edit -require="$module@$version"
    if [[ $module == k8s.io/kubernetes ]]; then
      # Every staging module k8s.io/X is published as k8s.io/X v0.<minor>.<patch>; read the list from the real go.mod.
      local gomod staging=v0.${version#v1.}
      gomod=$(go mod download -json "$module@$version" | python3 -c 'import json,sys; print(json.load(sys.stdin)["GoMod"])')
      for m in $(sed -n 's#^[[:space:]]*\(k8s.io/[a-z0-9-]*\) => \./staging/.*#\1#p' "$gomod"); do
        go mod edit -replace="$m=$m@$staging"
      done
    fi
    go get "$@"
    mkdir -p "$out.tmp"
    CGO_ENABLED=$cgo go build -trimpath -tags "$tags" -ldflags "-s -w $ldflags" -o "$out.tmp/" "$@"
  ) >&2
  [[ -f $out.tmp/server ]] && mv "$out.tmp/server" "$out.tmp/$name"  # etcd's main package is .../server/v3
  rm -rf "$work" "$out"; mv "$out.tmp" "$out"; touch "$out/.complete"
  log "built $name $version in $((SECONDS - t0)) s"
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
(( SECONDS - t0 > 5 )) && log "component build took $((SECONDS - t0)) s" || true
