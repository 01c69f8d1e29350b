# freevsa container image.
#
#   docker build -t freevsa .
#   docker run --rm -p 3260:3260 -v freevsa-data:/var/lib/freevsa freevsa
#
# The image runs `freevsa serve --config /etc/freevsa/freevsa.yaml` with the
# repository's example configuration (etc/freevsa.yaml), changed to listen on
# every interface (0.0.0.0:3260) instead of loopback so that it can be reached
# through the published port. The example's disk path (data/disk0.img) is
# relative to the working directory, /var/lib/freevsa: the sparse 1 GiB image
# is created as /var/lib/freevsa/data/disk0.img, in the volume. Mount your own
# configuration over /etc/freevsa/freevsa.yaml for real use.

# --- build stage -------------------------------------------------------------
FROM debian:bookworm AS build

# The same dependency script as on a developer machine; copied on its own first
# so that this layer is cached until the script changes.
COPY scripts/ /src/scripts/
RUN bash /src/scripts/install-deps.sh && rm -rf /var/lib/apt/lists/*

COPY . /src
WORKDIR /src
# The same CMake steps as scripts/quickstart.sh (unit tests are not needed here).
RUN cmake -S . -B build -G Ninja -DCMAKE_BUILD_TYPE=Release -DFREEVSA_TESTS=OFF \
 && cmake --build build -j "$(nproc)" \
 && strip build/daemon/freevsa

# Listen on all interfaces inside the container; fail the build if the
# example configuration no longer has the loopback portal this expects.
RUN grep -q '^  - 127\.0\.0\.1:3260$' etc/freevsa.yaml \
 && sed 's/^  - 127\.0\.0\.1:3260$/  - 0.0.0.0:3260/' etc/freevsa.yaml > /tmp/freevsa.yaml

# --- runtime stage -----------------------------------------------------------
FROM debian:bookworm-slim

# Only the shared libraries the daemon links against.
RUN apt-get update \
 && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends \
      libyaml-cpp0.7 libfmt9 libssl3 liburing2 libstdc++6 \
 && rm -rf /var/lib/apt/lists/*

COPY --from=build /src/build/daemon/freevsa /usr/local/bin/freevsa
COPY --from=build /tmp/freevsa.yaml /etc/freevsa/freevsa.yaml

# Relative paths in the configuration (data/disk0.img) resolve here.
WORKDIR /var/lib/freevsa
VOLUME ["/var/lib/freevsa"]
EXPOSE 3260

ENTRYPOINT ["/usr/local/bin/freevsa"]
CMD ["serve", "--config", "/etc/freevsa/freevsa.yaml"]
