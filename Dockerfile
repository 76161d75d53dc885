# syntax=docker/dockerfile:1

FROM rust:1.95-slim-bookworm AS build
WORKDIR /src
# Queries are checked against the committed .sqlx data: no database needed.
ENV SQLX_OFFLINE=true
COPY . .
RUN cargo build --release --locked --bin verdad --bin verdad-bench \
    && cp target/release/verdad target/release/verdad-bench /usr/local/bin/

FROM debian:bookworm-slim AS runtime
# The trust store for webhook receivers on https.
# hadolint ignore=DL3008
RUN apt-get update \
    && apt-get install -y --no-install-recommends ca-certificates \
    && rm -rf /var/lib/apt/lists/*
RUN groupadd --system --gid 10001 verdad \
    && useradd --system --uid 10001 --gid 10001 --no-create-home --shell /usr/sbin/nologin verdad
COPY --from=build /usr/local/bin/verdad /usr/local/bin/verdad-bench /usr/local/bin/
USER 10001:10001
ENV VERDAD_LISTEN_ADDR=0.0.0.0:50051 \
    VERDAD_MLLP_ADDR=0.0.0.0:2575 \
    VERDAD_LOG_FORMAT=json
# 50051: gRPC, gRPC-Web, HTTP/JSON and FHIR; 2575: HL7 v2 over MLLP.
EXPOSE 50051 2575
HEALTHCHECK --interval=15s --timeout=5s --start-period=20s --retries=3 \
    CMD ["verdad", "healthcheck"]
ENTRYPOINT ["verdad"]
CMD ["serve"]
