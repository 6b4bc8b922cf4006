#!/bin/sh
# usage: install-toolchain.sh ROOTFS   (a `run` step of the go-compile recipe, run by hack/images/build.py)
#
# Debian bookworm packages Go 1.19 only, so the image gets the build machine's own Go (`go env GOROOT`), trimmed
# to what `go build` needs for linux/amd64: the go command, the compiler, assembler and linker, and the standard
# library's sources without tests, test data and cmd/ (about 100 MB of 270). The recipe's files entry for
# /usr/local/go/VERSION keys the image on the toolchain; this checks it is the one copied.
#
# Then it compiles the Kubeless example function with the copied toolchain and the image's compile script, so that
# the image carries the build cache of the standard library and the server (/usr/local/kubeless/gocache): a pod's
# compile step then builds only the function. -trimpath keeps the cache valid wherever the files were compiled.
set -eu

rootfs=$1
goroot=$(go env GOROOT)
target=$rootfs/usr/local/go

if ! cmp -s "$goroot/VERSION" "$target/VERSION"; then
  echo "install-toolchain.sh: go env GOROOT is $goroot ($(head -n 1 "$goroot/VERSION")), but the recipe keys the" \
    "image on /usr/local/go/VERSION ($(head -n 1 "$target/VERSION")): put that Go first on PATH" >&2
  exit 1
fi
if [ "$(go env GOHOSTOS)/$(go env GOHOSTARCH)" != linux/amd64 ]; then
  echo "install-toolchain.sh: the image is linux/amd64, this Go is $(go env GOHOSTOS)/$(go env GOHOSTARCH)" >&2
  exit 1
fi

mkdir -p "$target/bin" "$target/pkg/tool/linux_amd64"
cp "$goroot/bin/go" "$target/bin/"
for tool in asm compile link; do
  cp "$goroot/pkg/tool/linux_amd64/$tool" "$target/pkg/tool/linux_amd64/"
done
cp -R "$goroot/pkg/include" "$target/pkg/"
cp "$goroot/go.env" "$goroot/LICENSE" "$target/"
(cd "$goroot" && tar -cf - --exclude=testdata --exclude='*_test.go' --anchored --exclude=src/cmd src) | (cd "$target" && tar -xf -)

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
mkdir "$work/kubeless"
printf 'module function\n\ngo 1.14\n' > "$work/kubeless/go.mod"
cat > "$work/kubeless/hello.go" <<'EOF'
package kubeless

import "github.com/kubeless/kubeless/pkg/functions"

func Hello(event functions.Event, context functions.Context) (string, error) {
	return "hello world!", nil
}
EOF
env PATH="$target/bin:$PATH" HOME="$work" KUBELESS_INSTALL_VOLUME="$work/kubeless" KUBELESS_FUNC_NAME=Hello \
  KUBELESS_GO_MODULE="$rootfs/usr/local/kubeless/functions" KUBELESS_GO_BUILD_DIR="$work/build" \
  KUBELESS_GO_CACHE_SEED=/nonexistent GOCACHE="$rootfs/usr/local/kubeless/gocache" GOPATH="$work/go" \
  sh "$rootfs/usr/local/kubeless/compile-function.sh" >&2
[ -x "$work/kubeless/server" ]
