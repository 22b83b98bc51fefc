# syntax=docker/dockerfile:1
#
# jobsd container image (Debian 12 "bookworm").
#
#   docker build -t jobsd .                        the daemon (the last stage, "runtime")
#   docker build --target fake-ml -t jobsd-fake-ml .   the fake Mercado Livre API (local demo)
#
# The runtime stage holds only the shared libraries jobsd links against, tzdata (JOBS_TIMEZONE
# arithmetic happens in PostgreSQL, but the C library and libpq read zone names too) and the CA
# certificates libcurl needs for https://api.mercadolibre.com. It runs as an unprivileged user
# and writes nothing to its file system (a read-only root file system works).

ARG DEBIAN_IMAGE=debian:12
ARG DEBIAN_SLIM_IMAGE=debian:12-slim

# ------------------------------------------------------------------ build: the jobsd binary
FROM ${DEBIAN_IMAGE} AS build
RUN apt-get update \
    && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends \
        build-essential cmake pkg-config \
        libmicrohttpd-dev libjansson-dev libpq-dev libssl-dev libcurl4-openssl-dev \
    && rm -rf /var/lib/apt/lists/*
WORKDIR /src
# Only what the jobsd target needs: a change to tests/ or docs/ does not rebuild it.
COPY CMakeLists.txt ./
COPY include ./include
COPY src ./src
COPY sql ./sql
COPY tools ./tools
RUN cmake -S . -B build -DJOBSD_TESTS=OFF -DCMAKE_BUILD_TYPE=Release \
    && cmake --build build -j"$(nproc)" --target jobsd \
    && install -D -m 0755 build/jobsd /out/usr/local/bin/jobsd \
    && /out/usr/local/bin/jobsd version

# ------------------------------------------------------------------ fake-ml-build: the demo API
# tests/fake_ml is built by the test tree (-DJOBSD_TESTS=ON), which needs cmocka to configure.
FROM build AS fake-ml-build
RUN apt-get update \
    && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends libcmocka-dev \
    && rm -rf /var/lib/apt/lists/*
COPY tests ./tests
RUN cmake -S . -B build-fake -DJOBSD_TESTS=ON -DCMAKE_BUILD_TYPE=Release \
    && cmake --build build-fake -j"$(nproc)" --target fake_ml \
    && install -D -m 0755 build-fake/tests/fake_ml/fake_ml /out/usr/local/bin/fake_ml \
    && mkdir -p /out/usr/local/share/jobsd/fake_ml \
    && cp -r tests/fake_ml/scenarios /out/usr/local/share/jobsd/fake_ml/

# ------------------------------------------------------------------ fake-ml: local demo only
# Serves the Mercado Livre API surface jobsd uses, from a scenario file (tests/fake_ml/README.md).
# Plain http: jobsd accepts it only on a loopback address, so docker-compose.yml runs it in
# the jobsd container's network namespace (ML_API_BASE_URL=http://127.0.0.1:8081).
FROM ${DEBIAN_SLIM_IMAGE} AS fake-ml
RUN apt-get update \
    && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends \
        libmicrohttpd12 libjansson4 \
    && rm -rf /var/lib/apt/lists/* \
    && groupadd --system --gid 10001 jobsd \
    && useradd --system --uid 10001 --gid jobsd --home-dir /nonexistent --no-create-home \
        --shell /usr/sbin/nologin jobsd
COPY --from=fake-ml-build /out/ /
USER 10001:10001
EXPOSE 8081
STOPSIGNAL SIGTERM
ENTRYPOINT ["fake_ml"]
CMD ["--scenario", "/usr/local/share/jobsd/fake_ml/scenarios/demo.json", "--bind", "127.0.0.1", "--port", "8081"]

# ------------------------------------------------------------------ runtime: the daemon (default)
FROM ${DEBIAN_SLIM_IMAGE} AS runtime
RUN apt-get update \
    && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends \
        libmicrohttpd12 libjansson4 libpq5 libssl3 libcurl4 ca-certificates tzdata \
    && rm -rf /var/lib/apt/lists/* \
    && groupadd --system --gid 10001 jobsd \
    && useradd --system --uid 10001 --gid jobsd --home-dir /nonexistent --no-create-home \
        --shell /usr/sbin/nologin jobsd
COPY --from=build /out/ /
# PORT is also what `jobsd healthcheck` dials (on 127.0.0.1), so keep BIND_ADDRESS at 0.0.0.0
# (or 127.0.0.1) when you change it.
ENV PORT=8080 \
    BIND_ADDRESS=0.0.0.0
USER 10001:10001
EXPOSE 8080
# SIGTERM: stop accepting, answer waiting requests with 202, let running jobs finish for up to
# SHUTDOWN_GRACE_SECONDS (25), then exit 0. Give `docker stop` more than that: --time 40.
STOPSIGNAL SIGTERM
HEALTHCHECK --interval=15s --timeout=5s --start-period=60s --retries=3 CMD ["jobsd", "healthcheck"]
ENTRYPOINT ["jobsd"]
CMD ["serve"]
