#!/usr/bin/env bash
# Makes sure a Go new enough for go.mod is at hand. When `go` on PATH is
# older (Debian 12's golang-go is 1.19) or missing, it installs Debian's
# golang-go if needed and uses it to download the official toolchain from the
# Go module proxy (the module golang.org/toolchain, checked against the Go
# checksum database like any module), then links it at DIR (default var/go).
# The Makefile uses DIR/bin/go when it exists. Idempotent.
set -euo pipefail
dir=${1:-var/go}
want=$(awk '$1=="go" {print $2; exit}' "$(dirname "$0")/../go.mod")   # e.g. 1.26.8

# vge A B: is version A >= B (dotted numbers)?
vge() { [ "$(printf '%s\n%s\n' "$2" "$1" | sort -V | head -1)" = "$2" ]; }


if [ -x "$dir/bin/go" ] && vge "$(GOTOOLCHAIN=local "$dir/bin/go" env GOVERSION | sed 's/^go//')" "$want"; then
  echo "go: $dir/bin/go is go$want or newer"; exit 0
fi
if command -v go >/dev/null && vge "$(GOTOOLCHAIN=local go env GOVERSION | sed 's/^go//')" "$want"; then
  if [ -L "$dir" ]; then rm -f "$dir"; fi   # a stale link from an older run
  echo "go: $(command -v go) is new enough"; exit 0
fi

bootstrap=$(command -v go || true)
if [ -z "$bootstrap" ]; then
  if [ -x /usr/lib/go/bin/go ]; then bootstrap=/usr/lib/go/bin/go; else
    sudo=""; [ "$(id -u)" -eq 0 ] || sudo=sudo
    echo "go: installing Debian's golang-go to bootstrap Go $want"
    DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends golang-go ca-certificates
    bootstrap=/usr/bin/go
  fi
fi

case "$(uname -m)" in
  x86_64) arch=amd64 ;;
  aarch64|arm64) arch=arm64 ;;
  armv7l|armv6l) arch=armv6l ;;
  *) echo "go: no Go toolchain for $(uname -m)" >&2; exit 1 ;;
esac
mod="golang.org/toolchain@v0.0.1-go$want.linux-$arch"
echo "go: downloading go$want for linux/$arch from the Go module proxy ($mod)"
# GOFLAGS=-mod=mod and an empty module: go mod download works outside a module.
tmp=$(mktemp -d); trap 'rm -rf "$tmp"' EXIT
cd "$tmp"
json=$(GOFLAGS= GOTOOLCHAIN=local GO111MODULE=on "$bootstrap" mod download -json "$mod")
root=$(printf '%s\n' "$json" | sed -n 's/^[[:space:]]*"Dir": "\(.*\)",*$/\1/p')
# Module zips keep no exec bits: set them as the go command's own toolchain
# switch does (bin/ and pkg/tool/).
if [ -n "$root" ] && [ -f "$root/bin/go" ]; then
  chmod a+x "$root"/bin/* "$root"/pkg/tool/*/*
fi
if [ -z "$root" ] || [ ! -x "$root/bin/go" ]; then
  echo "go: the proxy did not give $mod: $json" >&2
  echo "go: check that proxy.golang.org (or GOPROXY) is reachable, or install Go $want by hand" >&2
  exit 1
fi
cd - >/dev/null
mkdir -p "$(dirname "$dir")"
ln -sfn "$root" "$dir"
echo "go: $dir -> $root ($(GOTOOLCHAIN=local "$dir/bin/go" version))"
