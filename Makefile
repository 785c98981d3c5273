# jobrunner: the two commands are `make demo` (the launcher against a local AWS) and `make test`.
# Each installs what it needs on a fresh machine: pinned Python tools in .venv/, infra/node_modules.

SHELL := /bin/bash
CARGO ?= cargo
JOBS ?= 2
VENV := .venv
VENV_STAMP := $(VENV)/.installed
NODE_STAMP := infra/node_modules/.installed
export PATH := $(CURDIR)/$(VENV)/bin:$(PATH)

.PHONY: help demo test test-rust test-infra lint build synth bench burst venv clean

help:
	@echo "make demo   run the launcher on sample events against moto server (local AWS)"
	@echo "make test   every test: unit, aws-smithy-mocks, moto integration, infra (CDK, cdk-nag, cfn-lint)"
	@echo "make lint   rustfmt and clippy"
	@echo "make build  release Lambda binaries (cargo lambda build --release)"
	@echo "make synth  full cdk synth of the example stack, with Rust bundling (x86_64)"
	@echo "make bench  cold start, hot path, sizes, scaling simulations -> bench/RESULTS.md (~20 min)"
	@echo "make burst  10,000 S3 events through the launcher with ECS faults injected"
	@echo "           BURST_MAX_RUNNING=50 make burst: the same at a job's cap of 50 (ledger, tasks of a"
	@echo "           simulated 5 minutes stopped through the tracker; max_running_seen=, dlq_good=)"
	@echo "make fuzz   libFuzzer on event decoding, config parsing, planning and alert rendering (FUZZ_SECONDS each)"
	@echo "make mutants  cargo-mutants on core's tokens, event decoding, routing and classifier"

$(VENV_STAMP): requirements-dev.txt
	python3 -m venv $(VENV)
	$(VENV)/bin/pip install --quiet --disable-pip-version-check -r requirements-dev.txt
	touch $@

venv: $(VENV_STAMP)

$(NODE_STAMP): infra/package-lock.json
	cd infra && npm ci --no-audit --no-fund --loglevel=error
	touch $@

demo: $(VENV_STAMP)
	$(CARGO) build -j$(JOBS) -p jobrunner-launcher -p jobrunner-cli -p jobrunner-tracker -p jobrunner-scaler --bins --examples
	./scripts/demo.sh

test: test-rust test-infra

test-rust: $(VENV_STAMP)
	$(CARGO) test -j$(JOBS) --workspace

test-infra: $(VENV_STAMP) $(NODE_STAMP)
	$(CARGO) build -j$(JOBS) -p jobrunner-cli
	cd infra && npm test

lint:
	$(CARGO) fmt --all -- --check
	$(CARGO) clippy -j$(JOBS) --workspace --all-targets -- -D warnings
	@# The fuzz targets are their own crate (libFuzzer), outside the workspace: keep them compiling.
	$(CARGO) check -q -j$(JOBS) --manifest-path fuzz/Cargo.toml --bins

build: $(VENV_STAMP)
	cargo lambda build --release -j$(JOBS) --bin launcher --bin scaler --bin tracker

synth: $(VENV_STAMP) $(NODE_STAMP)
	cd infra && npm run synth

bench: $(VENV_STAMP)
	./bench/run.sh

burst: $(VENV_STAMP)
	./scripts/burst.sh

clean:
	$(CARGO) clean
	rm -rf $(VENV) infra/node_modules infra/cdk.out .demo

# Coverage-guided fuzzing (cargo fuzz, libFuzzer) of event decoding (direct, SNS-wrapped, Lambda
# destination records), config parsing, planning and alert rendering of hostile stop events.
# Each target runs FUZZ_SECONDS, or FUZZ_RUNS executions when set (docs/reliability.md).
FUZZ_SECONDS ?= 60
FUZZ_RUNS ?= -1
# Extra `cargo fuzz run` flags, e.g. "--no-trace-compares --target-dir target/notc" for about
# twice the executions per second of the slow targets (docs/reliability.md).
FUZZ_FLAGS ?=
FUZZ_TARGETS := decode_event decode_sns decode_destination decode_s3_batch parse_config plan_event render_stop track_stop worker_message
.PHONY: fuzz mutants
$(VENV)/bin/cargo-fuzz:
	$(CARGO) install --locked --root $(VENV) cargo-fuzz@0.13.2
fuzz: $(VENV)/bin/cargo-fuzz
	@for target in $(FUZZ_TARGETS); do \
	  mkdir -p fuzz/corpus/$$target; \
	  case $$target in \
	    parse_config) cp examples/jobrunner.toml fuzz/corpus/$$target/ ;; \
	    render_stop) cp events/ecs-task-stopped-*.json fuzz/corpus/$$target/ ;; \
	    track_stop|worker_message) ;; \
	    *) cp events/*.json fuzz/corpus/$$target/ ;; \
	  esac; \
	  echo "== fuzzing $$target for $(FUZZ_SECONDS)s (runs: $(FUZZ_RUNS))"; \
	  RUSTC_BOOTSTRAP=1 cargo fuzz run --sanitizer none $(FUZZ_FLAGS) $$target -j1 -- -max_total_time=$(FUZZ_SECONDS) -runs=$(FUZZ_RUNS) -print_final_stats=1 2>&1 \
	    | grep -E '^(stat::|==|INFO: (Running|Loaded|seed corpus)|Done|.*(panicked|ERROR|SUMMARY))' || exit 1; \
	done

# Mutation testing (cargo-mutants) of core's decision code: tokens, event decoding, routing,
# planning and the stop classifier. Every mutant must be caught; results land in
# target/mutants/mutants.out/.
MUTANTS_FILES := crates/core/src/token.rs crates/core/src/event/**/*.rs crates/core/src/routing.rs crates/core/src/plan.rs crates/core/src/plan/submit.rs crates/core/src/alert/classify.rs
$(VENV)/bin/cargo-mutants:
	$(CARGO) install --locked --root $(VENV) cargo-mutants@27.1.0
mutants: $(VENV)/bin/cargo-mutants
	cargo mutants --package jobrunner-core $(foreach f,$(MUTANTS_FILES),--file '$(f)') \
	  --jobs 1 --timeout 300 --output target/mutants -- --lib -j$(JOBS)
