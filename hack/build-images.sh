#!/usr/bin/env bash
# The product's images, built with buildah (no Docker, no registry), left as docker-archive tars in
# .images/ for the local cluster's containerd (`ctr images import`, see pizza_devcluster.realnode):
#   localhost/pizza/python:3.11          Debian bookworm python3 (debootstrap minbase), pizza 65532 (no tar)
#   localhost/pizza/python-build:3.11    the same plus python3-venv and binutils: the build stages (no tar)
#   pause.tar            localhost/pizza/pause:3.10           FROM scratch + .bin/pause
#   pizza-operator.tar   docker.io/library/pizza-operator:V   Dockerfile target operator  (.[operator])
#   pizza-serve-cpu.tar  docker.io/library/pizza-serve-cpu:V  Dockerfile target serve-cpu (.[cpu], no torch)
#   pizza-serve-gpu.tar  docker.io/library/pizza-serve-gpu:V  Dockerfile target serve-gpu (.[gpu]; GPU_IMAGE=1)
# V is the version in pyproject.toml (= the chart's appVersion). .images/images.txt lists
# NAME<TAB>FILE<TAB>INPUTS_HASH; an image whose inputs (the git files that go into it, its base, its
# recipe) have not changed is skipped.
#
#   bash hack/build-images.sh            (make images)
#   GPU_IMAGE=1 bash hack/build-images.sh
#   FORCE=1 bash hack/build-images.sh    rebuild everything (buildah's layer cache still applies)
#   BASE_LOCK_UPDATE=1 bash hack/build-images.sh   accept the mirror's package versions into
#                                        hack/base-packages.lock (after reviewing the diff)
set -euo pipefail

cd "$(dirname "$0")/.."
REPO=$PWD
OUT=${IMAGES_DIR:-$REPO/.images}
WORK=$OUT/work
GPU_IMAGE=${GPU_IMAGE:-0}
FORCE=${FORCE:-0}
PY=${PY:-$REPO/.venv/bin/python}

SUITE=bookworm
BASE_PACKAGES=python3,python3-venv,ca-certificates,binutils
BASE_REF=localhost/pizza/python:3.11
# The base's Debian packages, pinned: every package debootstrap installs, with its version. A base
# whose packages differ (the mirror moved on to a point release) is refused with the difference;
# BASE_LOCK_UPDATE=1 writes the new versions here instead (review them, commit the lock).
BASE_LOCK=$REPO/hack/base-packages.lock
BASE_LOCK_UPDATE=${BASE_LOCK_UPDATE:-0}
BUILD_REF=localhost/pizza/python-build:3.11
# What the runtime base drops after the build base is committed from the same rootfs: the build
# tools (binutils for strip, python3-venv and its wheels), apt and its TLS and signature stack,
# debconf, perl-base, adduser and e2fsprogs. No image runs them; Python, its stdlib and the wheels
# need none of them. (openssl stays: it has /usr/lib/ssl, where OpenSSL, so Python's ssl, finds
# the CA bundle.) dpkg goes last, its files only: /var/lib/dpkg/status and the file lists stay,
# so image scanners still see the packages.
RUNTIME_DROP=(binutils binutils-common binutils-x86-64-linux-gnu libbinutils libctf0 libctf-nobfd0
	libgprofng0 libjansson4 libsframe1 python3-venv python3.11-venv python3-pip-whl
	python3-setuptools-whl apt libapt-pkg6.0 gpgv debian-archive-keyring libgnutls30 libhogweed6
	libnettle8 libtasn1-6 libp11-kit0 libidn2-0 libunistring2 libseccomp2 libxxhash0 adduser
	e2fsprogs libext2fs2 libss2 debconf perl-base)
PAUSE_REF=localhost/pizza/pause:3.10
# Bump a recipe when the way an image is made changes without any of its input files changing.
BASE_RECIPE="base-3 $SUITE minbase $BASE_PACKAGES pizza=65532 build=$BUILD_REF drop=${RUNTIME_DROP[*]} dpkg"
PAUSE_RECIPE="pause-1 scratch entrypoint=/pause user=65535:65535"
APP_RECIPE="app-1"

say() { echo "==> $*"; }
die() {
	echo "build-images: $*" >&2
	exit 1
}

[ "$(id -u)" = 0 ] || die "needs root (buildah's storage and debootstrap)"

need_packages() {
	local missing=()
	command -v buildah >/dev/null || missing+=(buildah)
	command -v debootstrap >/dev/null || missing+=(debootstrap)
	if [ ${#missing[@]} -gt 0 ]; then
		say "installing ${missing[*]}"
		apt-get update -q
		DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends "${missing[@]}"
	fi
}

# The Debian mirror apt already uses (one-line or deb822 sources), never a name written here.
debian_mirror() {
	local file uri
	for file in /etc/apt/sources.list /etc/apt/sources.list.d/*.list; do
		[ -f "$file" ] || continue
		uri=$(awk -v s="$SUITE" '$1 == "deb" { for (i = 2; i < NF; i++) if ($i ~ /^[a-z]+:\/\//) { if ($(i + 1) == s) { print $i; exit } break } }' "$file")
		[ -n "$uri" ] && echo "$uri" && return
	done
	for file in /etc/apt/sources.list.d/*.sources; do
		[ -f "$file" ] || continue
		uri=$(awk -v s="$SUITE" '
			/^[[:space:]]*$/ { if (u != "" && ok) { print u; exit } u = ""; ok = 0; next }
			tolower($1) == "uris:" { u = $2 }
			tolower($1) == "suites:" { for (i = 2; i <= NF; i++) if ($i == s) ok = 1 }
			END { if (u != "" && ok) print u }' "$file" | head -n 1)
		[ -n "$uri" ] && echo "$uri" && return
	done
	die "no Debian $SUITE mirror in /etc/apt/sources.list or /etc/apt/sources.list.d/"
}

# sha256 of strings and files: the inputs of one image.
hash_of() { sha256sum | cut -c1-64; }

# The git files (tracked, plus new files git does not ignore) under the given paths, NUL-separated.
context_files() {
	git -C "$REPO" ls-files -z --cached --others --exclude-standard -- "$@" |
		while IFS= read -r -d '' f; do [ -f "$REPO/$f" ] && printf '%s\0' "$f"; done
}

files_hash() {
	context_files "$@" | sort -z | xargs -0 -r sha256sum -- | hash_of
}

image_id() { buildah images -q --no-trunc "$1" 2>/dev/null | head -n 1; }

# The stamp: .images/NAME.hash holds the inputs hash of .images/NAME.tar.
up_to_date() {
	local name=$1 hash=$2 ref=$3
	[ "$FORCE" = 1 ] && return 1
	[ -f "$OUT/$name.tar" ] && [ -f "$OUT/$name.hash" ] && [ "$(cat "$OUT/$name.hash")" = "$hash" ] &&
		[ -n "$(image_id "$ref")" ]
}

save_tar() {
	local name=$1 ref=$2 hash=$3
	rm -f "$OUT/$name.tar.part"
	buildah push -q "$ref" "docker-archive:$OUT/$name.tar.part:$ref" >/dev/null
	mv "$OUT/$name.tar.part" "$OUT/$name.tar"
	echo "$hash" >"$OUT/$name.hash"
	printf '%s\t%s\t%s\n' "$name" "$name.tar" "$hash" >>"$OUT/images.txt.part"
	say "$name: $ref -> .images/$name.tar ($(du -h "$OUT/$name.tar" | cut -f1))"
}

skip() {
	local name=$1 hash=$2
	printf '%s\t%s\t%s\n' "$name" "$name.tar" "$hash" >>"$OUT/images.txt.part"
	say "$name: unchanged (inputs $(cut -c1-12 <<<"$hash"))"
}

# The packages of a fresh debootstrap against hack/base-packages.lock (see BASE_LOCK above).
check_base_lock() {
	local rootfs=$1 found=$WORK/base-packages.found
	chroot "$rootfs" dpkg-query -W -f='${Package} ${Version}\n' | LC_ALL=C sort >"$found"
	if [ "$BASE_LOCK_UPDATE" = 1 ] || [ ! -f "$BASE_LOCK" ]; then
		{
			echo "# The python base's Debian packages ($SUITE, debootstrap minbase + $BASE_PACKAGES),"
			echo "# as hack/build-images.sh installs and checks them. Regenerate: BASE_LOCK_UPDATE=1 make images"
			cat "$found"
		} >"$BASE_LOCK"
		say "python base: $(wc -l <"$found") packages written to hack/base-packages.lock"
		return
	fi
	if ! diff <(grep -v '^#' "$BASE_LOCK") "$found" >"$WORK/base-packages.diff"; then
		cat "$WORK/base-packages.diff" >&2
		die "the mirror's packages differ from hack/base-packages.lock (above: < locked, > found); \
review and accept with BASE_LOCK_UPDATE=1 bash hack/build-images.sh"
	fi
	say "python base: $(wc -l <"$found") packages as locked in hack/base-packages.lock"
}

# One rootfs, two images: the build base (BUILD_REF, the Dockerfile's BUILD_IMAGE: pip, strip) is
# committed first, then RUNTIME_DROP and dpkg leave the rootfs and the rest is the runtime base.
build_base() {
	local hash=$1 rootfs=$WORK/python-rootfs mirror start p present=()
	mirror=$(debian_mirror)
	start=$SECONDS
	say "python base: debootstrap --variant=minbase $SUITE from $mirror (a few minutes)"
	rm -rf "$rootfs"
	debootstrap --variant=minbase --include="$BASE_PACKAGES" "$SUITE" "$rootfs" "$mirror" \
		>"$WORK/debootstrap.log" 2>&1 || die "debootstrap failed, see $WORK/debootstrap.log"
	check_base_lock "$rootfs"
	rm -rf "$rootfs"/var/lib/apt/lists/* "$rootfs"/var/cache/apt/* "$rootfs"/var/log/* "$rootfs"/tmp/*
	find "$rootfs/usr/lib/python3.11" -name __pycache__ -prune -exec rm -rf {} +
	# what no image runs: documentation, translations, glibc's iconv modules (Python has its own
	# codecs), the leap-second time zones; about 60 MB of the base
	rm -rf "$rootfs"/usr/share/doc/* "$rootfs"/usr/share/man/* "$rootfs"/usr/share/info/* \
		"$rootfs"/usr/share/locale/* "$rootfs"/usr/share/lintian "$rootfs"/usr/lib/x86_64-linux-gnu/gconv \
		"$rootfs"/usr/share/zoneinfo/right
	grep -q '^pizza:' "$rootfs/etc/group" || echo 'pizza:x:65532:' >>"$rootfs/etc/group"
	grep -q '^pizza:' "$rootfs/etc/passwd" ||
		echo 'pizza:x:65532:65532:pizza:/tmp:/usr/sbin/nologin' >>"$rootfs/etc/passwd"
	commit_rootfs "$rootfs" "$BUILD_REF" "$hash"

	for p in "${RUNTIME_DROP[@]}"; do
		chroot "$rootfs" dpkg-query -W -f='${db:Status-Status}' "$p" 2>/dev/null | grep -qx installed &&
			present+=("$p")
	done
	[ ${#present[@]} = 0 ] ||
		chroot "$rootfs" dpkg --purge --force-depends --force-remove-essential "${present[@]}" \
			>>"$WORK/debootstrap.log" 2>&1 || die "dpkg --purge failed, see $WORK/debootstrap.log"
	# dpkg itself: its files, not the database (the status file without dpkg, the file lists)
	grep -v '^/var/lib/dpkg' "$rootfs/var/lib/dpkg/info/dpkg.list" | while IFS= read -r p; do
		# files and file links; never a directory or a link to one (/sbin -> usr/sbin)
		if [ ! -d "$rootfs$p" ] && { [ -f "$rootfs$p" ] || [ -L "$rootfs$p" ]; }; then rm -f "$rootfs$p"; fi
	done
	rm -f "$rootfs"/var/lib/dpkg/info/dpkg.* "$rootfs"/var/lib/dpkg/*-old
	rm -f "$rootfs"/var/lib/dpkg/info/*.{preinst,postinst,prerm,postrm,config,templates,triggers}
	awk 'BEGIN { RS = ""; ORS = "\n\n" } $0 !~ /^Package: dpkg\n/' "$rootfs/var/lib/dpkg/status" \
		>"$rootfs/var/lib/dpkg/status.new" && mv "$rootfs/var/lib/dpkg/status.new" "$rootfs/var/lib/dpkg/status"
	rm -rf "$rootfs"/var/cache/* "$rootfs"/var/log/* "$rootfs"/usr/share/perl5 "$rootfs"/usr/share/python-wheels \
		"$rootfs"/etc/apt
	chroot "$rootfs" /sbin/ldconfig
	commit_rootfs "$rootfs" "$BASE_REF" "$hash"
	rm -rf "$rootfs"
	say "python base and build base built in $((SECONDS - start)) s"
}

commit_rootfs() {
	local rootfs=$1 ref=$2 hash=$3 c
	c=$(buildah from scratch)
	buildah copy -q "$c" "$rootfs/" / >/dev/null
	buildah config --env PATH=/usr/local/bin:/usr/bin:/bin --env LANG=C.UTF-8 --cmd '["python3"]' \
		--label "pizza.inputs=$hash" "$c"
	buildah commit -q --rm "$c" "$ref" >/dev/null
}

build_pause() {
	local hash=$1 pause=$2 c
	c=$(buildah from scratch)
	buildah copy -q --chmod 0755 "$c" "$pause" /pause >/dev/null
	buildah config --entrypoint '["/pause"]' --user 65535:65535 --label "pizza.inputs=$hash" "$c"
	buildah commit -q --rm "$c" "$PAUSE_REF" >/dev/null
}

# A pip setting of the host (PIP_* environment, then `pip config`), passed to pip in the build.
pip_setting() {
	local env
	env=PIP_$(tr 'a-z-' 'A-Z_' <<<"$1")
	if [ -n "${!env:-}" ]; then
		echo "${!env}"
		return
	fi
	"$PY" -m pip config list 2>/dev/null | sed -n "s/^[^.]*\.$1='\(.*\)'\$/\1/p" | tail -n 1
}

# pip in a build container needs the host's CA bundle (the index is reached through the host's
# proxy) and the host's index settings. They go into a pip.conf bind-mounted at /etc/pip.conf
# during RUN only: nothing of the host is written into an image or its history.
pip_mounts() {
	local cert key value conf=$WORK/pip.conf
	cert=$(pip_setting cert)
	[ -n "$cert" ] || cert=${REQUESTS_CA_BUNDLE:-/etc/ssl/certs/ca-certificates.crt}
	{
		echo "[global]"
		for key in index-url extra-index-url trusted-host; do
			value=$(pip_setting "$key")
			[ -z "$value" ] || echo "$key = $value"
		done
		[ ! -f "$cert" ] || echo "cert = /run/host-ca.crt"
	} >"$conf"
	echo "-v=$conf:/etc/pip.conf:ro"
	[ ! -f "$cert" ] || echo "-v=$cert:/run/host-ca.crt:ro"
}

# The build context: only the git files that go into the images (see APP_PATHS), so the inputs
# hash and the image agree and local junk (.venv, caches, data) never reaches buildah.
APP_PATHS=(Dockerfile .dockerignore pyproject.toml hack/constraints.txt README.md operator inference models devcluster)

make_context() {
	local ctx
	ctx=$(mktemp -d "$WORK/context.XXXXXX")
	context_files "${APP_PATHS[@]}" | tar -C "$REPO" --null -T - -cf - | tar -C "$ctx" -xf -
	echo "$ctx"
}

build_app() {
	local target=$1 ref=$2 hash=$3 ctx=$4 start=$SECONDS
	local -a mounts
	mapfile -t mounts < <(pip_mounts)
	say "$target: buildah bud --target $target (logs in .images/work/$target.log)"
	buildah bud --layers --pull=never --network host "${mounts[@]}" \
		--build-arg "PYTHON_IMAGE=$BASE_REF" --build-arg "BUILD_IMAGE=$BUILD_REF" --label "pizza.inputs=$hash" \
		--target "$target" -t "$ref" -f "$ctx/Dockerfile" "$ctx" >"$WORK/$target.log" 2>&1 ||
		die "buildah bud --target $target failed; tail of .images/work/$target.log:
$(tail -n 30 "$WORK/$target.log")"
	say "$target built in $((SECONDS - start)) s"
}

label_of() {
	buildah inspect --type image --format '{{index .OCIv1.Config.Labels "pizza.inputs"}}' "$1" 2>/dev/null || true
}

# `check`: every built image runs. buildah run without a network: the entry point's --help and
# the imports. Then runc, as 65532:65532 with a read-only root filesystem and a tmpfs on /tmp (as
# the chart runs them): pizza-operator --help, and for serve-cpu a model server on 127.0.0.1 (the
# host's loopback) until /v2/health/ready, i.e. weights loaded and a warm-up inference passed on
# ONNX Runtime; a write outside /tmp must fail.
READY_PROBE='
import os, subprocess, sys, time, urllib.request
port = sys.argv[1]
try:
    open("/opt/venv/probe", "w")
    sys.exit("the root filesystem is writable")
except OSError as error:
    print("write outside /tmp refused:", error.strerror)
server = subprocess.Popen(["pizza-serve", "model", "--backend", "onnx", "--source",
                           "builtin://micro-pizza-net", "--precision", "int8",
                           "--host", "127.0.0.1", "--port", port])
start = time.monotonic()
try:
    while time.monotonic() - start < 90:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/v2/health/ready", timeout=2) as r:
                print(f"ready in {time.monotonic() - start:.1f} s: HTTP {r.status}")
                sys.exit(0)
        except OSError:
            if server.poll() is not None:
                sys.exit(f"server exited {server.returncode}")
            time.sleep(0.5)
    sys.exit("not ready after 90 s")
finally:
    server.terminate()
    server.wait(10)
'

# Python's default TLS context finds the system CA bundle (the base keeps /usr/lib/ssl).
CA_PROBE='
import ssl, sys
cas = ssl.create_default_context().cert_store_stats()["x509_ca"]
print("system CA certificates:", cas)
sys.exit(0 if cas else "ssl.create_default_context() has no CA certificates")
'

# runc with a read-only root: the image's env, uid 65532, a tmpfs on /tmp, the host's network.
run_readonly() {
	local ref=$1 c m bundle id=pizza-image-check-$$ rc=0
	shift
	bundle=$WORK/check-bundle
	rm -rf "$bundle" && mkdir -p "$bundle"
	c=$(buildah from --pull=never "$ref")
	m=$(buildah mount "$c")
	runc spec --bundle "$bundle" &&
		buildah inspect --type image "$ref" >"$bundle/image.json" &&
		"$PY" - "$bundle" "$m" "$@" <<'PYCODE' &&
import json, sys
bundle, rootfs, *args = sys.argv[1:]
spec = json.load(open(f"{bundle}/config.json"))
spec["root"] = {"path": rootfs, "readonly": True}
spec["process"].update(terminal=False, args=args, cwd="/tmp", user={"uid": 65532, "gid": 65532},
                       env=json.load(open(f"{bundle}/image.json"))["OCIv1"]["config"]["Env"])
spec["mounts"].append({"destination": "/tmp", "type": "tmpfs", "source": "tmpfs",
                       "options": ["nosuid", "nodev", "mode=1777", "size=256m"]})
spec["linux"]["namespaces"] = [n for n in spec["linux"]["namespaces"] if n["type"] != "network"]
json.dump(spec, open(f"{bundle}/config.json", "w"))
PYCODE
	timeout 180 runc run --bundle "$bundle" "$id" </dev/null || rc=$?
	runc delete -f "$id" >/dev/null 2>&1 || true
	buildah umount "$c" >/dev/null
	buildah rm "$c" >/dev/null
	rm -rf "$bundle"
	return "$rc"
}

# buildah run in a fresh working container of REF, without a network; the container is removed.
run_in() {
	local ref=$1 c rc=0
	shift
	c=$(buildah from --pull=never "$ref")
	buildah run --network none "$c" -- "$@" || rc=$?
	buildah rm "$c" >/dev/null
	return "$rc"
}

check_images() {
	local version ref port
	version=$(app_version)
	mkdir -p "$WORK"
	ref=docker.io/library/pizza-operator:$version
	say "check $ref"
	run_in "$ref" pizza-operator --help | head -n 2
	run_in "$ref" python3 -c 'import kopf, kubernetes, pizza_operator.handlers; print("operator imports ok")'
	run_in "$ref" python3 -c "$CA_PROBE"
	say "$ref under runc: uid 65532, read-only root, tmpfs /tmp"
	run_readonly "$ref" pizza-operator --help | head -n 1
	ref=docker.io/library/pizza-serve-cpu:$version
	say "check $ref"
	run_in "$ref" pizza-serve --help | head -n 2
	run_in "$ref" python3 -c '
import importlib.util, onnxruntime, pizza_inference.model_server.app, pizza_inference.router.app
print("onnxruntime", onnxruntime.__version__, "torch installed:", importlib.util.find_spec("torch") is not None)'
	run_in "$ref" python3 -c "$CA_PROBE"
	say "$ref under runc: model server on 127.0.0.1 until ready"
	port=$("$PY" -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
	run_readonly "$ref" python3 -c "$READY_PROBE" "$port"
	say "images check: ok"
}

# One image: skip it when its tar, stamp and buildah image all carry this inputs hash.
image() {
	local name=$1 ref=$2 hash=$3
	shift 3
	if up_to_date "$name" "$hash" "$ref" && [ "$(label_of "$ref")" = "$hash" ]; then
		skip "$name" "$hash"
		return
	fi
	local start=$SECONDS
	if [ "$(label_of "$ref")" != "$hash" ] || [ "$FORCE" = 1 ]; then
		"$@"
	fi
	save_tar "$name" "$ref" "$hash"
	say "$name: done in $((SECONDS - start)) s"
}

# The version tag: pyproject.toml's version, which the chart's appVersion must match.
app_version() {
	local version chart
	version=$(sed -n 's/^version = "\(.*\)"$/\1/p' "$REPO/pyproject.toml" | head -n 1)
	[ -n "$version" ] || die "no version in pyproject.toml"
	chart=$(sed -n 's/^appVersion: *"\{0,1\}\([^"]*\)"\{0,1\}$/\1/p' "$REPO/helm/pizza-operator/Chart.yaml")
	[ -z "$chart" ] || [ "$chart" = "$version" ] ||
		die "pyproject.toml version $version differs from the chart's appVersion $chart"
	echo "$version"
}

main() {
	local start=$SECONDS version base_hash pause_hash src_hash ctx="" pause=$REPO/.bin/pause
	need_packages
	mkdir -p "$OUT" "$WORK"
	rm -rf "$WORK"/context.* # left by a run that failed (this one holds the lock)
	: >"$OUT/images.txt.part"
	version=$(app_version)

	base_hash=$({ echo "$BASE_RECIPE"; cat "$BASE_LOCK" 2>/dev/null || true; } | hash_of)
	if [ "$FORCE" = 1 ] || [ "$(label_of "$BASE_REF")" != "$base_hash" ] ||
		[ "$(label_of "$BUILD_REF")" != "$base_hash" ]; then
		build_base "$base_hash"
	else
		say "python base: unchanged ($BASE_REF)"
	fi

	[ -x "$pause" ] || die "no $pause: run make binaries"
	pause_hash=$({ echo "$PAUSE_RECIPE"; sha256sum <"$pause"; } | hash_of)
	image pause "$PAUSE_REF" "$pause_hash" build_pause "$pause_hash" "$pause"

	# One image per Dockerfile target: .images/pizza-TARGET.tar holds docker.io/library/pizza-TARGET:V.
	src_hash=$(files_hash "${APP_PATHS[@]}")
	local targets=(operator serve-cpu serve-gpu) target name ref hash
	for target in "${targets[@]}"; do
		name=pizza-$target
		ref=docker.io/library/$name:$version
		hash=$({ echo "$APP_RECIPE $target $ref"; echo "$base_hash"; echo "$src_hash"; } | hash_of)
		if [ "$target" = serve-gpu ] && [ "$GPU_IMAGE" != 1 ]; then
			# Not built by default; one built earlier from the same inputs stays listed.
			if up_to_date "$name" "$hash" "$ref"; then skip "$name" "$hash"; fi
			continue
		fi
		if ! up_to_date "$name" "$hash" "$ref" || [ "$(label_of "$ref")" != "$hash" ]; then
			[ -n "$ctx" ] || ctx=$(make_context)
		fi
		image "$name" "$ref" "$hash" build_app "$target" "$ref" "$hash" "$ctx"
	done

	mv "$OUT/images.txt.part" "$OUT/images.txt"
	[ -z "$ctx" ] || rm -rf "$ctx"
	say "images ready in .images/ ($((SECONDS - start)) s):"
	column -t -s $'\t' "$OUT/images.txt" 2>/dev/null | sed 's/^/    /' || cat "$OUT/images.txt"
}

# One run at a time (make images, make demo, tests): a second one waits, then finds its images
# up to date.
mkdir -p "$OUT"
exec 9>"$OUT/.lock"
if ! flock -n 9; then
	say "waiting for another build-images.sh (lock $OUT/.lock)"
	flock 9
fi
case ${1:-build} in
build) main ;;
check) check_images ;;
*) die "usage: build-images.sh [build|check]" ;;
esac
