#!/usr/bin/env bash
# Builds kube-apiserver, kube-controller-manager and kube-scheduler from Debian's `kubernetes` source package
# and installs them in a cache keyed by version; etcd comes from Debian's `etcd-server`. Nothing is downloaded
# except through apt. A second run with the binaries cached does nothing.
#
#   build-kubernetes.sh [CACHE_ROOT]  (default: $HARNESS_KUBERNETES_CACHE, else ${XDG_CACHE_HOME:-~/.cache}/ml-chaos-harness/kubernetes)
set -euo pipefail

K8S_VERSION=v1.20.2
SRC_PACKAGE=kubernetes
SRC_VERSION_PREFIX=1.20.5+really1.20.2
CACHE_ROOT=${1:-${HARNESS_KUBERNETES_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/ml-chaos-harness/kubernetes}}
BIN_DIR=$CACHE_ROOT/$K8S_VERSION/bin
BINARIES=(kube-apiserver kube-controller-manager kube-scheduler)
APT_PACKAGES=(golang-go rsync make dpkg-dev etcd-server golang-github-modern-go-reflect2-dev)
SOURCES_FILE=/etc/apt/sources.list.d/ml-chaos-harness-src.sources

step() { printf '[kubernetes build] %s\n' "$*" >&2; }
fail() { printf 'kubernetes build: %s failed: %s\n' "$1" "$2" >&2; exit 1; }

all_cached() {
  local b
  for b in "${BINARIES[@]}"; do [ -x "$BIN_DIR/$b" ] || return 1; done
  command -v etcd >/dev/null 2>&1
}

if all_cached; then
  exit 0
fi

missing=()
for p in "${APT_PACKAGES[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
done
need_src=1
[ -f "$SOURCES_FILE" ] && need_src=0
if [ "$(id -u)" != 0 ]; then
  if [ ${#missing[@]} -gt 0 ] || [ $need_src = 1 ]; then
    printf 'kubernetes build: not root; run: sudo bash %s  (it adds a deb-src entry for bookworm and installs: %s)\n' \
      "$0" "${missing[*]:-nothing}" >&2
    exit 1
  fi
fi

if [ $need_src = 1 ]; then
  step "adding a deb-src entry for Debian bookworm ($SOURCES_FILE)"
  cat > "$SOURCES_FILE" <<SRC || fail "deb-src entry" "cannot write $SOURCES_FILE (run as root)"
Types: deb-src
URIs: http://deb.debian.org/debian
Suites: bookworm
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg
SRC
  missing+=(__update__)
fi
if [ ${#missing[@]} -gt 0 ]; then
  step "apt-get update"
  apt-get update -qq || fail "apt-get update" "check the apt sources and the network to Debian's mirror"
  pkgs=()
  for p in "${missing[@]}"; do [ "$p" = __update__ ] || pkgs+=("$p"); done
  if [ ${#pkgs[@]} -gt 0 ]; then
    step "apt-get install ${pkgs[*]}"
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${pkgs[@]}" >/dev/null \
      || fail "apt-get install" "run: apt-get install -y --no-install-recommends ${pkgs[*]}"
  fi
fi

work=$(mktemp -d /tmp/ml-chaos-k8s-build.XXXXXX)
trap 'rm -rf "$work"' EXIT INT TERM
cd "$work"
version=$(apt-cache showsrc "$SRC_PACKAGE" 2>/dev/null | sed -n "s/^Version: \($SRC_VERSION_PREFIX.*\)/\1/p" | head -n 1)
[ -n "$version" ] || fail "finding the source package" \
  "apt has no $SRC_PACKAGE $SRC_VERSION_PREFIX source; run apt-get update (the deb-src entry is $SOURCES_FILE)"
step "apt-get source $SRC_PACKAGE=$version (34 MB)"
apt-get source -qq "$SRC_PACKAGE=$version" >/dev/null 2>"$work/source.log" \
  || fail "apt-get source" "$(tail -n 1 "$work/source.log"); is the deb-src entry in $SOURCES_FILE?"
src=$(find "$work" -maxdepth 1 -mindepth 1 -type d -name 'kubernetes-*' | head -n 1)
[ -n "$src" ] || fail "unpacking the source" "no kubernetes-* folder after apt-get source"

# Go 1.19 crashes the vendored reflect2 v1.0.1 (SIGSEGV in mapiterinit when the apiserver encodes JSON);
# Debian's reflect2 1.0.2 sources fix it.
step "replacing vendor/github.com/modern-go/reflect2 with Debian's 1.0.2"
reflect2=$(dpkg -L golang-github-modern-go-reflect2-dev | grep '/reflect2\.go$' | head -n 1)
[ -n "$reflect2" ] || fail "reflect2 swap" "golang-github-modern-go-reflect2-dev has no reflect2.go"
rm -rf "$src/vendor/github.com/modern-go/reflect2"
mkdir -p "$src/vendor/github.com/modern-go/reflect2"
find "$(dirname "$reflect2")" -maxdepth 1 -type f ! -name go.mod ! -name go.sum \
  -exec cp {} "$src/vendor/github.com/modern-go/reflect2/" \;

step "make WHAT=\"cmd/kube-apiserver cmd/kube-controller-manager cmd/kube-scheduler\" (about 5 minutes on 2 cores)"
start=$(date +%s)
(
  cd "$src"
  export KUBE_GIT_VERSION=$K8S_VERSION KUBE_GIT_TREE_STATE=clean GOFLAGS=-mod=vendor GO111MODULE=on
  export GOCACHE="$work/gocache" GOPATH="$work/gopath"
  make WHAT="cmd/kube-apiserver cmd/kube-controller-manager cmd/kube-scheduler" 2>&1 \
    | while IFS= read -r line; do printf '[kubernetes build]   %s\n' "$line" >&2; done
  exit "${PIPESTATUS[0]}"
) || fail "make" "see the lines above; the build needs Debian's golang-go (1.19), rsync and make"
step "built in $(( $(date +%s) - start )) s"

mkdir -p "$BIN_DIR.tmp"
for b in "${BINARIES[@]}"; do
  f=$(find "$src/_output" -type f -name "$b" -perm -u+x | head -n 1)
  [ -n "$f" ] || fail "install" "make produced no $b"
  cp "$f" "$BIN_DIR.tmp/$b"
done
rm -rf "$BIN_DIR"
mv "$BIN_DIR.tmp" "$BIN_DIR"
step "installed ${BINARIES[*]} in $BIN_DIR"
