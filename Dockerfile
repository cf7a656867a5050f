# syntax=docker/dockerfile:1
# tsmetrics container image. Build: docker build -t tsmetrics .
# Variant with Tailscale's binaries (for tsnet mode): docker build --target tsnet -t tsmetrics:tsnet .

FROM node:24-bookworm-slim AS build
WORKDIR /src
COPY package.json package-lock.json .npmrc ./
# The image already has Node 24, so the pinned `node` dev dependency's binary is not needed.
RUN npm ci --ignore-scripts
COPY tsconfig.json tsconfig.build.json ./
COPY src ./src
COPY receivers ./receivers
COPY processors ./processors
COPY exporters ./exporters
COPY connectors ./connectors
COPY bin ./bin
RUN npx tsc -p tsconfig.build.json && npm prune --omit=dev --ignore-scripts

FROM gcr.io/distroless/nodejs24-debian12:nonroot AS runtime
WORKDIR /app
COPY --from=build /src/package.json ./package.json
COPY --from=build /src/node_modules ./node_modules
COPY --from=build /src/dist ./dist
COPY --from=build /src/bin ./bin
ENV NODE_ENV=production ENV=production PORT=9100
USER 65532:65532
EXPOSE 9100
HEALTHCHECK --interval=30s --timeout=6s --start-period=20s --retries=3 \
  CMD ["/nodejs/bin/node", "/app/bin/tsmetrics.js", "healthcheck"]
ENTRYPOINT ["/nodejs/bin/node", "/app/bin/tsmetrics.js"]
CMD ["run"]

# tsnet variant: the same image plus tailscaled/tailscale for USE_TSNET=true.
FROM docker.io/tailscale/tailscale:stable AS tailscale
FROM runtime AS tsnet
COPY --from=tailscale /usr/local/bin/tailscaled /usr/local/bin/tailscaled
COPY --from=tailscale /usr/local/bin/tailscale /usr/local/bin/tailscale
ENV TSNET_STATE_DIR=/var/lib/tsmetrics/tsnet
