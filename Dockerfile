# Drover on Debian 12: build stage (compilers, -dev packages), then a slim
# runtime with only the shared libraries the binaries use.
#   docker build -t drover .
#   docker-compose up --scale worker=4        (compose.yaml)
FROM debian:12 AS build
ENV DEBIAN_FRONTEND=noninteractive
RUN apt-get update && apt-get install -y --no-install-recommends \
      gcc make cmake git ca-certificates pkg-config \
      libzmq3-dev libczmq-dev libsodium-dev libmsgpack-dev libopenblas-dev liblapacke-dev \
      libuv1-dev liblmdb-dev \
    && rm -rf /var/lib/apt/lists/*
WORKDIR /src
COPY . .
RUN cmake --preset release -DDV_WERROR=ON \
    && cmake --build --preset release -j "$(nproc)" \
    && cmake --install build/release --prefix /opt/drover

FROM debian:12-slim
ENV DEBIAN_FRONTEND=noninteractive
RUN apt-get update && apt-get install -y --no-install-recommends \
      libzmq5 libczmq4 libmsgpackc2 libopenblas0-pthread liblapacke \
      libuv1 liblmdb0 \
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
