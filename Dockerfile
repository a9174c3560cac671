# syntax=docker/dockerfile:1
#
# immctl container image: a static (musl) binary on an empty base.
#
#   docker build -t immctl .
#   docker run --rm -p 9090:9090 -v "$PWD/manifests:/manifests:ro" \
#     -e ALIBABA_CLOUD_ACCESS_KEY_ID -e ALIBABA_CLOUD_ACCESS_KEY_SECRET immctl
#
# Default command: the daemon (`immctl run /manifests`) with JSON logs on :9090.
# Settings: mount a file and pass `--config /etc/immctl/config.yaml` (or set IMMCTL_CONFIG),
# or use IMMCTL_* variables. See docs/deploy.md.
#
# Runtime image facts (checked by scripts/check-container.sh):
# - FROM scratch: no shell, no package manager, no libc; only /immctl.
# - No CA bundle is needed: reqwest's `rustls-tls` feature compiles in the Mozilla roots
#   (webpki-roots).
# - Numeric non-root user 65532, so `runAsNonRoot` works without an /etc/passwd.
# - No HEALTHCHECK: there is no shell or curl to run one. Orchestrators probe the daemon's
#   HTTP endpoints instead (/healthz, /readyz on 9090; see deploy/base/deployment.yaml).
#   checkov:skip=CKV_DOCKER_2:no shell or HTTP client in the image; Kubernetes probes /healthz

# Pin the toolchain; for bit-for-bit rebuilds also pin the digest (rust:1.95-bookworm@sha256:…).
ARG RUST_VERSION=1.95

FROM rust:${RUST_VERSION}-bookworm AS build
# musl-gcc compiles ring's C and assembly for the static target.
RUN apt-get update \
 && apt-get install -y --no-install-recommends musl-tools=1.2.3-1 \
 && rm -rf /var/lib/apt/lists/* \
 && rustup target add x86_64-unknown-linux-musl
WORKDIR /src
COPY . .
# --locked: exactly the versions in Cargo.lock. The path remap keeps the build directory
# and cargo's home out of the binary (one source of differences between rebuilds).
# `install -s` strips the symbols (15 MB -> 12 MB).
ENV RUSTFLAGS="--remap-path-prefix=/src=. --remap-path-prefix=/usr/local/cargo=/cargo" \
    CARGO_TERM_COLOR=never
RUN cargo build --release --locked --target x86_64-unknown-linux-musl \
 && install -D -s -m 0755 target/x86_64-unknown-linux-musl/release/immctl /out/immctl

FROM scratch AS runtime
LABEL org.opencontainers.image.title="immctl" \
      org.opencontainers.image.description="Alibaba Cloud RAM roles, RAM policies and IMM projects, kept in git"
COPY --from=build /out/immctl /immctl
USER 65532:65532
ENV IMMCTL_LOG_FORMAT=json
EXPOSE 9090
ENTRYPOINT ["/immctl"]
CMD ["run", "/manifests"]
