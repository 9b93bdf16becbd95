# forgebridge container image: a multi-stage build.
#
#   docker build -t forgebridge .
#   docker run --rm -p 8080:8080 -e FORGEBRIDGE__SERVER__PUBLIC_URL=http://127.0.0.1:8080 forgebridge
#
# Settings come from flags after the image name (they replace the default command) or from
# FORGEBRIDGE__SECTION__KEY environment variables; see the README's configuration reference.

# ---------------------------------------------------------------- build
FROM rust:1-bookworm AS builder
WORKDIR /build

# Fetch dependencies in their own layer, so that a source change does not download them again.
COPY Cargo.toml Cargo.lock ./
RUN mkdir src && echo 'fn main() {}' > src/main.rs && cargo fetch --locked && rm -rf src

# The mapping files and default settings are built into the binary (include_str!).
COPY src ./src
COPY mappings ./mappings
COPY config ./config

# A profile-guided build (bench/pgo.sh: build instrumented, run the training load of
# bench/pgo_train.py on loopback, build again with the profile): about a quarter less user CPU
# per translated request than a plain release build (bench/PROFILE.md). It builds twice, so it
# takes about twice as long; `--build-arg PGO=0` builds plainly.
ARG PGO=1
COPY bench/pgo.sh bench/pgo_train.py bench/bench.py bench/faults.py bench/faulty_relay.py ./bench/
RUN if [ "$PGO" = 1 ]; then \
        { command -v python3 >/dev/null \
          || { apt-get update && apt-get install -y --no-install-recommends python3; }; } \
        && bash bench/pgo.sh && built=target/pgo/release/forgebridge; \
    else \
        cargo build --release --locked && built=target/release/forgebridge; \
    fi \
    && install -m 0755 "$built" /usr/local/bin/forgebridge

# ---------------------------------------------------------------- runtime
FROM debian:bookworm-slim

# ca-certificates: the system trust store, which forgebridge reads (the Mozilla roots
# built in are only the fallback) to verify https upstreams; add a private CA here to trust it.
RUN apt-get update \
    && apt-get install -y --no-install-recommends ca-certificates \
    && rm -rf /var/lib/apt/lists/*

RUN groupadd --system forgebridge \
    && useradd --system --gid forgebridge --no-create-home --home-dir /nonexistent \
       --shell /usr/sbin/nologin forgebridge

COPY --from=builder /usr/local/bin/forgebridge /usr/local/bin/forgebridge

USER forgebridge:forgebridge
EXPOSE 8080
# SIGTERM (docker stop) shuts down gracefully: open requests finish first.
STOPSIGNAL SIGTERM
ENTRYPOINT ["forgebridge"]
CMD ["serve", "--listen", "0.0.0.0:8080"]
