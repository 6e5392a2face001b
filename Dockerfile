# retap's container image, for people who build with Docker, Podman or Buildah:
#   docker build -t retap:dev .
# The project itself builds the same image without any daemon or registry (deploy/image/build,
# see docs/kubernetes.md); keep the two in step. The build stage turns the build host's kernel
# BTF (/sys/kernel/btf/vmlinux, visible in a normal `docker build` on Linux) into bpf/vmlinux.h.

FROM node:20-bookworm AS build
RUN apt-get update \
 && apt-get install -y --no-install-recommends clang llvm libbpf-dev libelf-dev zlib1g-dev bpftool make g++ pkg-config \
 && rm -rf /var/lib/apt/lists/*
WORKDIR /src
COPY package.json package-lock.json ./
RUN npm ci --no-audit --no-fund
COPY . .
RUN npm run build \
 && npm prune --omit=dev \
 && find node_modules -depth -type d \( -path '*/node_modules/@types' -o -name undici-types \) -exec rm -rf {} + \
 && find dist -name '*.test.js' -delete -o -name '*.map' -delete

FROM debian:bookworm-slim
# The addon links libbpf, libelf and zlib; node and the addon need glibc and libstdc++ (in the base).
RUN apt-get update \
 && apt-get install -y --no-install-recommends libbpf1 libelf1 zlib1g \
 && rm -rf /var/lib/apt/lists/*
COPY --from=build /usr/local/bin/node /usr/local/bin/node
COPY --from=build /src/package.json /opt/retap/package.json
COPY --from=build /src/bin /opt/retap/bin
COPY --from=build /src/dist /opt/retap/dist
COPY --from=build /src/build/Release/retap_native.node /opt/retap/build/Release/retap_native.node
COPY --from=build /src/snapshots/schema /opt/retap/snapshots/schema
COPY --from=build /src/deploy/k8s /opt/retap/deploy/k8s
COPY --from=build /src/node_modules /opt/retap/node_modules
RUN ln -s ../../../opt/retap/bin/retap.js /usr/local/bin/retap
ENV NODE_ENV=production
WORKDIR /opt/retap
ENTRYPOINT ["/usr/local/bin/node", "/opt/retap/bin/retap.js"]
CMD ["--help"]
