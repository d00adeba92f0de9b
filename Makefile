# Build, test and run the report pipeline. `make help` lists the targets.
SHELL := /bin/bash
CARGO ?= cargo
OUTPUTS ?= $(CURDIR)/outputs

.PHONY: help build test lint fmt doc test-shared test-emulator test-sdk test-setup test-vectorize \
        test-pipeline test-upload demo run run-setup run-vectorize run-pipeline run-upload bench

help: ## List the targets
	@grep -hE '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  %-16s %s\n", $$1, $$2}'

build: ## Build every crate (debug)
	$(CARGO) build --workspace --bins

test: build ## Run every test of the workspace (offline, against the emulator)
	$(CARGO) test --workspace

lint: ## Formatting and clippy, warnings are errors
	$(CARGO) fmt --all -- --check
	$(CARGO) clippy --workspace --all-targets -- -D warnings

fmt: ## Format the code
	$(CARGO) fmt --all

doc: ## API docs (the shared contract: target/doc/shared/index.html)
	$(CARGO) doc --no-deps -p shared

test-shared: ## The shared contract's tests (incl. the kill test)
	$(CARGO) test -p shared

test-emulator: ## The emulator's tests through the real client crates
	$(CARGO) test -p emulator

test-sdk: build ## Official Python SDKs against a live emulator (needs python3; makes a throwaway venv)
	bash emulator/sdk-tests/run.sh

test-setup: ## setup and the Drive client
	$(CARGO) test -p setup -p drive-client

test-vectorize: ## vectorize and the OpenAI client
	$(CARGO) test -p vectorize -p openai-client

test-pipeline: ## pipeline
	$(CARGO) test -p pipeline

test-upload: ## upload and the end-to-end run
	$(CARGO) build --workspace --bins
	$(CARGO) test -p upload

bench: ## Benchmarks: vectorize's peak memory, 1 MB vs 200 MB document side by side (release build)
	$(CARGO) test --release -p vectorize --test vectorize -- --ignored --nocapture peak_memory

demo: ## The whole pipeline offline on examples/acme; prints where the final report is
	bash scripts/demo.sh

run: ## The whole pipeline against the real services (needs real credentials, INPUTS=file)
	bash scripts/run.sh $(INPUTS)

run-setup run-vectorize run-pipeline run-upload: run-%: ## One job against the real services (INPUTS=file)
	@test -n "$(INPUTS)" || { echo "usage: make $@ INPUTS=path/to/inputs.yaml" >&2; exit 2; }
	$(CARGO) run --release -p $* -- --inputs-file $(INPUTS) --outputs $(OUTPUTS)

# --- packaging and deployment (SPEC §9) -----------------------------------------------------
TARGET := x86_64-unknown-linux-gnu
DIST_BINS := setup vectorize pipeline upload emulator webhook
VERSION := $(shell sed -n 's/^version = "\(.*\)"/\1/p' Cargo.toml | head -1)

.PHONY: dist images replay test-images lint-workflows test-trigger

dist: ## Static release binaries of the jobs, the emulator and the webhook into dist/
	RUSTFLAGS="-C target-feature=+crt-static" $(CARGO) build --locked --release --target $(TARGET) --target-dir target/dist \
	  $(addprefix -p ,$(DIST_BINS))
	mkdir -p dist && for b in $(DIST_BINS); do cp target/dist/$(TARGET)/release/$$b dist/; done
	@ls -l dist

images: dist ## One FROM-scratch image per job (+ emulator, webhook), tagged agent-readiness/<name>:VERSION
	for b in $(filter-out webhook,$(DIST_BINS)); do \
	  docker build -q -f docker/Dockerfile --build-arg JOB=$$b --build-arg VERSION=$(VERSION) \
	    -t agent-readiness/$$b:$(VERSION) . || exit 1; \
	done
	docker build -q -f webhook/Dockerfile --build-arg VERSION=$(VERSION) -t agent-readiness/webhook:$(VERSION) .

replay: ## Compose replay: examples/acme offline, or INPUTS=file ENV_FILE=file against the real services
	bash scripts/replay.sh $(INPUTS)

test-images: images ## Image size, user, shell, --help/--dry-run in containers, offline replay (shared tree and per-job volumes)
	bash scripts/test-images.sh

lint-workflows: ## Compose file and GitHub workflows against their published schemas
	bash scripts/lint-workflows.sh

test-trigger: ## trigger CLI and webhook server
	$(CARGO) test -p trigger -p webhook
