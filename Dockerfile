# syntax=docker/dockerfile:1
# One image for every part: docker build --build-arg PART=gateway -t platform-gateway .
# (PART is gateway, auth, accounting, chat or monitoring; docker-compose.yml and the Helm chart build or pull one
# image per part). Dependencies come from package-lock.json (npm ci), pruned to the part's production closure
# (scripts/part-closure.ts: the gateway gets no Express or store driver). The app files belong to root and are
# read-only to the runtime user.

# The part's production dependencies, from the lock
FROM node:24-slim AS deps
ARG PART
WORKDIR /app
RUN case "$PART" in gateway|auth|accounting|chat|monitoring) ;; \
      *) echo "build with --build-arg PART=gateway|auth|accounting|chat|monitoring (got '$PART')" >&2; exit 1 ;; esac
# npm ci needs every workspace's manifest the lock names (the workspaces of package.json)
COPY package.json package-lock.json ./
COPY shared-types/package.json shared-types/
COPY gateway/package.json gateway/
COPY auth/package.json auth/
COPY accounting/package.json accounting/
COPY chat/package.json chat/
COPY monitoring/package.json monitoring/
COPY webapp/package.json webapp/
COPY scripts/part-closure.ts scripts/
# no install scripts: no production dependency needs one (esbuild finds its binary in its optional package)
RUN npm ci --omit=dev --workspace="$PART" --ignore-scripts --no-audit --no-fund \
 && node scripts/part-closure.ts prune "$PART" \
 && rm -rf /root/.npm

# The part's files: its workspace folders (itself, shared-types, webapp for monitoring), the start command and
# the health check, owned by root, readable by everyone, writable by no one else
FROM deps AS app
ARG PART
COPY . /src
RUN mkdir /out \
 && mv node_modules /out/ \
 && for dir in $(node scripts/part-closure.ts workspaces "$PART"); do cp -R "/src/$dir" "/out/$dir"; done \
 && cp /src/scripts/healthcheck.mjs /out/healthcheck.mjs \
 && node -e "const start = require('/src/$PART/package.json').scripts.start; if (!/^node( --\S+)* src\/main\.ts$/.test(start)) throw new Error('unexpected start script: ' + start); process.stdout.write('#!/bin/sh\nexec ' + start + '\n')" > /out/start.sh \
 && chmod 755 /out/start.sh \
 && chown -R root:root /out \
 && chmod -R u=rwX,go=rX /out

FROM node:24-slim
ARG PART
ENV NODE_ENV=production HOST=0.0.0.0 PART=${PART}
COPY --from=app --chown=root:root /out /app
WORKDIR /app/${PART}
USER node
# services: /readyz on PORT (stores answer); the gateway: /readyz on its ops listener (OPS_PORT)
HEALTHCHECK --interval=10s --timeout=5s --start-period=30s --retries=3 CMD ["node", "/app/healthcheck.mjs"]
# `npm start` of the part without npm: exec "node <its flags> src/main.ts" (node is PID 1 and gets SIGTERM)
CMD ["/app/start.sh"]
