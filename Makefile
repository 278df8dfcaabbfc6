# leasehold: the two set-up commands are `make run` (the local demo) and `make test`.
SHELL := bash
.SHELLFLAGS := -eu -o pipefail -c
CARGO ?= cargo
export CARGO_TERM_COLOR ?= never

.PHONY: run test tools build bench bench-quick lint fmt

## tools: installs what the build and tests need and the machine may lack.
tools:
	@command -v $(CARGO) >/dev/null || { echo "error: cargo is required (install Rust with rustup)"; exit 1; }
	@$(CARGO) nextest --version >/dev/null 2>&1 || $(CARGO) install cargo-nextest --locked
	@command -v kubectl >/dev/null || { echo "error: kubectl is required by the kubectl tests and the demo; install it from your distribution or https://kubernetes.io/docs/tasks/tools/"; exit 1; }

build: tools
	$(CARGO) build --workspace --all-targets --locked

## run: the local demo on the bundled API server, no cluster needed.
run: tools
	$(CARGO) build --locked -p leasehold-apiserver -p leasehold-lease --examples --bins
	bash scripts/demo.sh

## test: every test, then the short form of the benches (figures printed, not asserted).
test: build
	$(CARGO) nextest run --workspace --locked --no-fail-fast
	$(CARGO) test --workspace --doc --locked
	$(MAKE) bench-quick

bench-quick:
	$(CARGO) run --locked -q -p leasehold-tests --bin bench-apiserver -- --bin target/debug/leasehold-apiserver --quick

## bench: the full benches, on release builds; results go into BENCHMARKS.md by hand, with the machine and date.
bench: tools
	$(CARGO) build --release --locked -p leasehold-apiserver -p leasehold-tests
	./target/release/bench-apiserver --bin target/release/leasehold-apiserver

lint:
	$(CARGO) fmt --all -- --check
	$(CARGO) clippy --workspace --all-targets --locked -- -D warnings
	RUSTDOCFLAGS="-D warnings" $(CARGO) doc --workspace --no-deps --locked

fmt:
	$(CARGO) fmt --all
