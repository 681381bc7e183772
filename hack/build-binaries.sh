#!/usr/bin/env bash
# Builds the local cluster's binaries from the Go module proxy into .bin/, pinned by the go.mod
# files under hack/tools/: the control plane (etcd, kube-apiserver, kube-controller-manager,
# kube-scheduler), kwok, helm, the real nodes' agents (kubelet, kube-proxy of the same Kubernetes
# release), kubectl of that release, a CoreDNS with only the plugins a local cluster needs (no
# forward: it cannot send a query off the machine), the pod sandbox's pause and the NetworkPolicy
# engine (kube-router's network policy controller, one process for both real nodes: see
# hack/tools/kube-router/main.go). A stamp keyed by
# those files makes a rerun free until a pin changes.
set -euo pipefail

root=$(cd "$(dirname "$0")/.." && pwd)
bin="$root/.bin"
tools="$root/hack/tools"
mkdir -p "$bin"

key=$(cat "$tools"/*/go.mod "$tools"/*/go.sum "$tools"/*/*.go "$0" 2>/dev/null | sha256sum | cut -c1-16)
stamp="$bin/.stamp-$key"
if [[ -f "$stamp" ]]; then
  echo "==> control-plane binaries up to date in .bin/ (stamp $key)"
  exit 0
fi

export GOFLAGS="${GOFLAGS:--mod=mod}" CGO_ENABLED=0
k8s_version=$(awk '$1 == "require" && $2 == "k8s.io/kubernetes" {print $3}' "$tools/kubernetes/go.mod")
k8s_minor=$(echo "$k8s_version" | cut -d. -f2)
version_ldflags="-s -w -X k8s.io/component-base/version.gitVersion=$k8s_version -X k8s.io/component-base/version.gitMajor=1 -X k8s.io/component-base/version.gitMinor=$k8s_minor -X k8s.io/component-base/version.gitTreeState=clean"

build() {  # build DIR PACKAGE OUTPUT [LDFLAGS]
  local dir=$1 pkg=$2 out=$3 ldflags=${4:--s -w} start=$SECONDS
  echo "==> building $out from $pkg (first build takes minutes on 2 cores; cached afterwards)"
  (cd "$tools/$dir" && go build -trimpath -ldflags "$ldflags" -o "$bin/$out" "$pkg")
  echo "    $out built in $((SECONDS - start)) s"
}

build etcd go.etcd.io/etcd/server/v3 etcd
build kubernetes k8s.io/kubernetes/cmd/kube-apiserver kube-apiserver "$version_ldflags"
build kubernetes k8s.io/kubernetes/cmd/kube-controller-manager kube-controller-manager "$version_ldflags"
build kubernetes k8s.io/kubernetes/cmd/kube-scheduler kube-scheduler "$version_ldflags"
build kubernetes k8s.io/kubernetes/cmd/kubelet kubelet "$version_ldflags"
build kubernetes k8s.io/kubernetes/cmd/kube-proxy kube-proxy "$version_ldflags"
build pause . pause
build kubernetes k8s.io/kubernetes/cmd/kubectl kubectl "$version_ldflags"
build kwok sigs.k8s.io/kwok/cmd/kwok kwok
helm_version=$(awk '$1 == "require" && $2 == "helm.sh/helm/v3" {print $3}' "$tools/helm/go.mod")
build helm helm.sh/helm/v3/cmd/helm helm "-s -w -X helm.sh/helm/v3/internal/version.version=$helm_version"

coredns_version=$(awk '$1 == "require" && $2 == "github.com/coredns/coredns" {print $3}' "$tools/coredns/go.mod")
build coredns . coredns "-s -w -X github.com/coredns/coredns/coremain.GitCommit=$coredns_version"

kube_router_version=$(awk '$1 == "github.com/cloudnativelabs/kube-router/v2" {print $2; exit}' "$tools/kube-router/go.mod")
build kube-router . kube-router-netpol "-s -w -X github.com/cloudnativelabs/kube-router/v2/pkg/version.Version=$kube_router_version"

rm -f "$bin"/.stamp-*
touch "$stamp"
echo "==> control-plane binaries ready in .bin/ (kubernetes $k8s_version)"
