# npm install (not ci): this npm drops other platforms' optional packages from the lock, which npm ci then rejects.
# Every target runs through scripts/env.sh, which bootstraps Node >= 24 (pinned) into .tools/ when the
# system's node is older, and exports the dev secrets and local store URLs (a PG_URL, REDIS_URL or MONGO_URL
# you set is used as is: that store is not started).
SHELL := /bin/bash
.SHELLFLAGS := -eu -o pipefail -c
RUN := source scripts/env.sh &&

.PHONY: compose-env up test suites services stop-services lint format typecheck bench create-user reconcile clean install verify

node_modules/.install-stamp: package.json package-lock.json */package.json
	@$(RUN) npm install --no-audit --no-fund --loglevel=error
	@touch $@

install: node_modules/.install-stamp

services:
	@bash scripts/services.sh start

stop-services:
	@bash scripts/services.sh stop

up: install
	@$(RUN) node scripts/up.ts

lint: install
	@$(RUN) npx biome check .

format: install
	@$(RUN) npx biome check --write .

typecheck: install
	@$(RUN) npm run --silent typecheck

test: install services
	@$(MAKE) --no-print-directory lint typecheck
	@$(RUN) node scripts/test-all.ts

# `make suites SUITES="auth e2e"`: mocha suites only (no lint, no type check); all of them without SUITES
suites: install services
	@$(RUN) node scripts/test-all.ts $(SUITES)

bench: install services
	@$(RUN) node scripts/bench-all.ts

create-user: install services
	@$(RUN) cd auth && MONGO_DB="$${AUTH_MONGO_DB:-$${MONGO_DB:-auth}}" node src/cli/create-user.ts --email "$(EMAIL)" --username "$(USERNAME)" --password "$(PASSWORD)" --role "$(or $(ROLE),enduser)"

# FROM/TO: dates or ISO times (default: the last day); PG_DB defaults to accounting
reconcile: install
	@$(RUN) cd accounting && node src/cli/reconcile.ts $(if $(FROM),--from "$(FROM)") $(if $(TO),--to "$(TO)")

clean: stop-services
	rm -rf .data node_modules */node_modules .tools

# docker-compose reads its secrets from .env (git-ignored): random values, written once.
compose-env:
	@bash scripts/secrets.sh && cp -n .data/secrets.env .env && echo ".env written (keep it secret)"
