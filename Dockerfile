# syntax=docker/dockerfile:1
# Every processor binary and sagactl in one small image, run as non-root.
#   docker build -t sagastream:0.1.0 .
# The Helm chart (helm/sagastream) runs one binary per StatefulSet by name.

FROM rust:1.95-bookworm AS build
# librdkafka is built from source by rdkafka-sys: a C toolchain, and
# OpenSSL for TLS and SASL.
RUN apt-get update \
 && apt-get install -y --no-install-recommends build-essential cmake pkg-config libssl-dev zlib1g-dev \
 && rm -rf /var/lib/apt/lists/*
WORKDIR /src
COPY . .
RUN cargo build --release --locked \
      -p sagastream-escrow-saga -p sagastream-order-saga -p sagastream-inventory -p sagastream-tracking -p sagastream-runner -p sagastream-ingest -p sagactl \
 && mkdir -p /out \
 && cp target/release/sagastream-escrow-saga target/release/sagastream-order-saga \
       target/release/sagastream-inventory target/release/sagastream-tracking \
       target/release/sagastream-runner target/release/sagastream-ingest target/release/sagactl /out/

FROM debian:bookworm-slim
RUN apt-get update \
 && apt-get install -y --no-install-recommends ca-certificates libssl3 \
 && rm -rf /var/lib/apt/lists/*
COPY --from=build /out/ /usr/local/bin/
COPY topics.yaml /etc/sagastream/topics/topics.yaml
USER 65532:65532
# The runtime's metrics, /healthz and /readyz.
EXPOSE 9464
# No default processor: the chart (or `docker run IMAGE sagastream-escrow-saga`) names one.
CMD ["sagactl", "--help"]
