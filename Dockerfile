# syntax=docker/dockerfile:1
# leasehold: the agent image. A static (musl) binary on distroless/static, running as the numeric non-root user
# 65532, so the DaemonSet's runAsNonRoot, runAsUser/runAsGroup 65532 and readOnlyRootFilesystem hold.
#
#   docker build -t ghcr.io/leasehold/leasehold:0.1.0 .
#
# The build stage runs what `make static` runs (without its smoke test). To put your collectors under leasehold,
# copy the binary into their image instead: COPY --from=ghcr.io/leasehold/leasehold:0.1.0
# /usr/local/bin/leasehold /usr/local/bin/leasehold, and point the [[task]] commands at them.

ARG RUST_VERSION=1.95

FROM docker.io/library/rust:${RUST_VERSION}-bookworm AS build
ARG TARGET=x86_64-unknown-linux-musl
# musl-gcc compiles ring's C and assembly for the musl target.
RUN apt-get update \
    && apt-get install -y --no-install-recommends musl-tools \
    && rm -rf /var/lib/apt/lists/* \
    && rustup target add "${TARGET}"
WORKDIR /src
COPY . .
# Cargo.lock pins every dependency (--locked); the caches only speed up rebuilds.
RUN --mount=type=cache,target=/usr/local/cargo/registry \
    --mount=type=cache,target=/src/target \
    cargo build --profile dist --locked --target "${TARGET}" -p leasehold \
    && install -D -m 0755 "target/${TARGET}/dist/leasehold" /out/leasehold

FROM gcr.io/distroless/static-debian12:nonroot
COPY --from=build /out/leasehold /usr/local/bin/leasehold
USER 65532:65532
# 9531: /healthz, /readyz and /metrics. The control API stays on 127.0.0.1:9530 inside the pod
# (`kubectl exec ... -- leasehold status`).
EXPOSE 9531
# `leasehold agent` by default; `docker run IMAGE status` or `run -- CMD` pick the other modes.
ENTRYPOINT ["/usr/local/bin/leasehold"]
CMD ["agent"]
