# Drover on Debian 12: build stage (compilers, -dev packages), then a slim
# runtime with only the shared libraries the binaries use.
#   docker build -t drover .
#   docker-compose up --scale worker=4        (compose.yaml)
# RUNTIME_IMAGE: the runtime stage's base, any Debian 12 (bookworm) image;
# where debian:12-slim cannot be pulled (an offline engine, tests/docker),
# --build-arg RUNTIME_IMAGE=debian:12.
ARG RUNTIME_IMAGE=debian:12-slim

FROM debian:12 AS build
ENV DEBIAN_FRONTEND=noninteractive
RUN apt-get update && apt-get install -y --no-install-recommends \
      gcc make cmake git ca-certificates pkg-config \
      libzmq3-dev libczmq-dev libsodium-dev libmsgpack-dev libopenblas-dev liblapacke-dev \
      libuv1-dev liblmdb-dev libmicrohttpd-dev libraft-dev liblz4-dev \
    && rm -rf /var/lib/apt/lists/*
WORKDIR /src
COPY . .
# A host build tree in the context (CMake refuses a cache made in another
# folder) means .dockerignore lost build/: say so rather than fail in CMake.
# Only what `cmake --install` installs: the binaries and libdrover.so (the
# tests, benchmarks and fuzz replays stay out of the image; `make test`
# builds them). A target installed elsewhere and missing here fails the
# install loudly.
RUN if [ -e build ]; then echo "build/ is in the context (.dockerignore)" >&2; exit 1; fi \
    && cmake --preset release -DDV_WERROR=ON \
    && cmake --build --preset release -j "$(nproc)" \
         --target drover drover-broker drover-worker libdrover_shared \
    && cmake --install build/release --prefix /opt/drover

FROM ${RUNTIME_IMAGE}
ENV DEBIAN_FRONTEND=noninteractive
# The libraries `ldd` names for the installed binaries and libdrover.so
# (their own dependencies come with them): tests/docker/image_run.sh fails
# when one is missing.
RUN apt-get update && apt-get install -y --no-install-recommends \
      libzmq5 libczmq4 libsodium23 libmsgpackc2 libopenblas0-pthread liblapacke \
      libuv1 liblmdb0 libmicrohttpd12 libraft2 liblz4-1 \
    && rm -rf /var/lib/apt/lists/* \
    && useradd --system --home /var/lib/drover --create-home drover
COPY --from=build /opt/drover /opt/drover
ENV PATH=/opt/drover/bin:$PATH
USER drover
WORKDIR /var/lib/drover
EXPOSE 7470 7471
# The broker by default; compose.yaml runs workers from the same image.
# Plain mode (--plain) suits a private container network only; with keys
# mounted, replace it by --secret-key and --authorized-keys
# (docs/SECURITY.md).
CMD ["drover-broker", "--client", "tcp://0.0.0.0:7470", \
     "--worker", "tcp://0.0.0.0:7471", "--data", "/var/lib/drover", \
     "--plain"]
