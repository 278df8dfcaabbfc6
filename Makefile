# leasehold: the two set-up commands are `make run` (the local demo) and `make test`.
SHELL := bash
.SHELLFLAGS := -eu -o pipefail -c
CARGO ?= cargo
export CARGO_TERM_COLOR ?= never

.PHONY: run test tools build bench bench-quick lint fmt

## tools: installs what the build and tests need and the machine may lack. Debian's prometheus package brings
## promtool (the alert rules' unit tests) and the server /usr/bin/prometheus (tests/tests/prometheus.rs runs the
## rules and the dashboard's queries in it against real agents); Debian's faketime package brings libfaketime, which
## gives a real agent a wrong wall clock with no hook in the product (the soak, tests/tests/agent_edges.rs).
tools:
	@command -v $(CARGO) >/dev/null || { echo "error: cargo is required (install Rust with rustup)"; exit 1; }
	@$(CARGO) nextest --version >/dev/null 2>&1 || $(CARGO) install cargo-nextest --locked
	@command -v kubectl >/dev/null || { echo "error: kubectl is required by the kubectl tests and the demo; install it from your distribution or https://kubernetes.io/docs/tasks/tools/"; exit 1; }
	@{ command -v promtool >/dev/null && test -x /usr/bin/prometheus; } || { \
		command -v apt-get >/dev/null || { echo "error: promtool and /usr/bin/prometheus are required by the monitoring tests; install Debian's prometheus package"; exit 1; }; \
		sudo=$$([ "$$(id -u)" = 0 ] || echo sudo); \
		$$sudo apt-get update -qq && $$sudo env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends prometheus; }
	@test -e /usr/lib/$$(uname -m)-linux-gnu/faketime/libfaketime.so.1 || { \
		command -v apt-get >/dev/null || { echo "error: libfaketime is required by the skewed-clock tests (the soak, agent_edges); install Debian's faketime package"; exit 1; }; \
		sudo=$$([ "$$(id -u)" = 0 ] || echo sudo); \
		$$sudo apt-get update -qq && $$sudo env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends faketime; }

build: tools
	$(CARGO) build --workspace --all-targets --locked

## run: the local demo on the bundled API server, no cluster needed.
run: tools
	$(CARGO) build --locked -p leasehold -p leasehold-apiserver -p leasehold-tests --bins
	bash scripts/demo.sh

## test: every test, then the short form of the benches (figures printed, not asserted).
test: build
	$(CARGO) nextest run --workspace --locked --no-fail-fast -E 'not binary(sim)'
	$(CARGO) test --workspace --doc --locked
	$(MAKE) sim-test
	$(MAKE) monitoring-test
	$(MAKE) bench-quick BENCH_QUICK_ARGS="$(or $(BENCH_QUICK_ARGS),--impls leasehold)"
	$(MAKE) soak-quick
	$(MAKE) no-test-hooks

## no-test-hooks (part of `make test`): the shipped agent holds no test hook. The release agent is built exactly as
## shipped, on its own (`cargo build --release --locked -p leasehold`), so that no test crate's features unify into
## it. Fails if cargo's own report of that build shows leasehold-lease compiled with its test-hooks feature, or if the
## binary holds a LEASEHOLD_TEST_ string or a test hook's message. The dist builds (`make static`, the Dockerfile)
## also build the agent without any test crate; `make static` runs the same string check on its binary.
.PHONY: no-test-hooks
# $(call no_test_hook_strings,BINARY): fails if BINARY holds a LEASEHOLD_TEST_ string or a test hook's message.
no_test_hook_strings = if grep -q -e LEASEHOLD_TEST_ -e '(test hook)' "$(1)"; then echo "error: $(1) holds a test hook"; exit 1; fi; \
	echo "no-test-hooks: $(1) holds no LEASEHOLD_TEST_ string and no test hook"
no-test-hooks:
	@echo "$(CARGO) build --release --locked -p leasehold"; \
		report=$$($(CARGO) build --release --locked -p leasehold --message-format=json-render-diagnostics); \
		artifacts=$$(grep '"reason":"compiler-artifact"' <<<"$$report" || true); \
		features=$$(grep '#leasehold-lease@' <<<"$$artifacts" | grep -o '"features":\[[^]]*\]' || true); \
		test -n "$$features" || { echo "error: cargo's report of the release build shows no leasehold-lease"; exit 1; }; \
		echo "no-test-hooks: the release build compiled leasehold-lease with $$features"; \
		if grep -q test-hooks <<<"$$features"; then echo "error: the release agent's build enables leasehold-lease's test-hooks feature"; exit 1; fi; \
		bin=$$(grep -o '"executable":"[^"]*/leasehold"' <<<"$$artifacts" | cut -d '"' -f 4 || true); \
		test -n "$$bin" || { echo "error: cargo's report of the release build shows no leasehold binary"; exit 1; }; \
		$(call no_test_hook_strings,$$bin)

## monitoring-test (part of `make test`): the alert rules in manifests/monitoring checked and unit-tested with
## promtool (Debian's prometheus package, which `make tools` installs when it is missing).
.PHONY: monitoring-test
monitoring-test: tools
	promtool check rules manifests/monitoring/rules.yaml
	cd manifests/monitoring && promtool test rules rules_test.yaml

## bench-quick: the short forms, on debug builds: the apiserver bench, then the election bench at N=10 with a few
## handovers for leasehold and each peer (bench/peers, its own workspace). Figures are printed, never asserted;
## it fails only when a bench cannot run. BENCH_QUICK_ARGS adds options (e.g. --impls leasehold).
bench-quick:
	$(CARGO) build --locked -q -p leasehold-apiserver
	$(CARGO) run --locked -q -p leasehold-tests --bin bench-apiserver -- --bin target/debug/leasehold-apiserver --quick
	cd bench/peers && CARGO_TARGET_DIR=$(CURDIR)/bench/target $(CARGO) build -q --bins
	bench/target/debug/bench-elections --quick --apiserver-bin $(or $(CARGO_TARGET_DIR),target)/debug/leasehold-apiserver --charts bench/target/charts-quick $(BENCH_QUICK_ARGS)

## bench: the full benches, on release builds; results go into BENCHMARKS.md by hand, with the machine and date.
## The election bench also draws its results as SVG charts into bench/charts (BENCHMARKS.md embeds them);
## `bench-elections --report <results.json>... --charts <dir>` redraws them from saved results.
## The election bench (leasehold vs kube-lease-manager, kube-leader-election, kube-coordinate at N=10/100/1000)
## takes about an hour; BENCH_ARGS picks a subset, e.g. BENCH_ARGS="--impls leasehold --n 10,100".
bench: tools
	$(CARGO) build --release --locked -p leasehold-apiserver -p leasehold-tests
	./target/release/bench-apiserver --bin target/release/leasehold-apiserver
	cd bench/peers && CARGO_TARGET_DIR=$(CURDIR)/bench/target $(CARGO) build --release --bins
	bench/target/release/bench-elections --apiserver-bin $(or $(CARGO_TARGET_DIR),target)/release/leasehold-apiserver --out bench/target/elections.json --charts bench/charts $(BENCH_ARGS)
	$(MAKE) footprint
	$(MAKE) footprint-static
	$(MAKE) bench-spread

## bench-spread: spread-mode failover (BENCHMARKS.md, "Spread mode: failover after a crash"): 4 and 20 real agents
## share 10 spread stamp tasks with the default member timing; the agent holding the most tasks is SIGKILLed 3 times
## in a row, at the default task timing and at LD 3 s. About 8 minutes. The agents' logs go to target/bench-spread.log;
## the table is printed at the end.
.PHONY: bench-spread
bench-spread:
	$(CARGO) build --release --locked -p leasehold -p leasehold-apiserver -p leasehold-tests --bins
	$(or $(CARGO_TARGET_DIR),target)/release/bench-members --failover 4,20 --timings default,fast --kills 3 \
		> $(or $(CARGO_TARGET_DIR),target)/bench-spread.log 2>&1 \
		|| { tail -n 60 $(or $(CARGO_TARGET_DIR),target)/bench-spread.log; exit 1; }
	@grep -E '^(\||  [0-9]+ agents:)' $(or $(CARGO_TARGET_DIR),target)/bench-spread.log

## soak: the fault soak (tests/src/bin/soak.rs), on release builds: 5 agents with a leader stamp task and spread
## stamp tasks, under a random, seeded schedule of faults (leader SIGKILL/SIGTERM/SIGSTOP, partitions, API server
## restarts with state kept and wiped, 500s, 429s, latency, closed watches, a skewed wall clock) for SOAK_DURATION
## (at least 10m). Prints a Markdown summary; fails on an overlap or a missed recovery. The agents' log tails go to
## $(SOAK_LOG), shown on failure. SOAK_ARGS adds options, e.g. SOAK_ARGS="--seed 42" to replay a schedule or
## "--faults restart-wipe,leader-stop" to pick kinds; E2E_KEEP=1 keeps the agents' whole logs and the stamp file.
.PHONY: soak soak-quick footprint footprint-static
SOAK_DURATION ?= 10m
SOAK_LOG = $(or $(CARGO_TARGET_DIR),target)/soak.stderr.log
soak: tools
	$(CARGO) build --release --locked -p leasehold -p leasehold-apiserver -p leasehold-tests --bins
	$(or $(CARGO_TARGET_DIR),target)/release/soak --duration $(SOAK_DURATION) $(SOAK_ARGS) 2>$(SOAK_LOG) \
		|| { tail -n 200 $(SOAK_LOG); echo "soak failed; the whole stderr is in $(SOAK_LOG)"; exit 1; }

## soak-quick: the 2-minute form of the soak (about 2 min 10 s), on debug builds; part of `make test`.
soak-quick:
	$(CARGO) build --locked -q -p leasehold -p leasehold-apiserver -p leasehold-tests --bins
	$(or $(CARGO_TARGET_DIR),target)/debug/soak --duration 2m $(SOAK_ARGS) 2>$(SOAK_LOG) \
		|| { tail -n 200 $(SOAK_LOG); echo "soak failed; the whole stderr is in $(SOAK_LOG)"; exit 1; }

## footprint: RSS and CPU of one idle agent (release build, default timing) with 1 namespace, with 50, and with 10
## spread tasks, each sampled over FOOTPRINT_ARGS' window (default 60 s); part of `make bench`. About 4 minutes.
footprint: tools
	$(CARGO) build --release --locked -p leasehold -p leasehold-apiserver -p leasehold-tests --bins
	$(or $(CARGO_TARGET_DIR),target)/release/footprint $(FOOTPRINT_ARGS)

## footprint-static: the same on the agent as shipped, the static (musl) `dist` build of `make static` that the
## Dockerfile copies into its image; part of `make bench`. Its RSS is the figure that issue 13's goal (≤ 8 MiB) is about.
footprint-static: static
	$(CARGO) build --release --locked -p leasehold-tests --bins
	E2E_BIN_DIR=$(STATIC_DIR) $(or $(CARGO_TARGET_DIR),target)/release/footprint $(FOOTPRINT_ARGS)

## The deterministic simulation of the elector (crates/lease/tests/sim), built with --cfg tokio_unstable so that tokio's
## own generator is seeded and a seed replays line for line. That flag rebuilds tokio, so these builds get their own
## target directory and the product's builds stay as they are.
## sim-test (part of `make test`): 2,000 seeds on a debug build, the scripted scenarios, the replay check.
## sim: SEEDS seeds from SIM_FIRST_SEED on a release build, every failing seed listed.
## sim-replay: SIM_SEED=<seed> make sim-replay prints one seed's whole trace.
.PHONY: sim sim-test sim-replay
SEEDS ?= 100000
SIM_FIRST_SEED ?= 0
SIM_ENV = RUSTFLAGS="--cfg tokio_unstable" CARGO_TARGET_DIR=$(or $(CARGO_TARGET_DIR),target)/sim
sim-test:
	$(SIM_ENV) $(CARGO) test --locked -p leasehold-lease --test sim
sim: tools
	SIM_KEEP_GOING=1 SIM_SEEDS=$(SEEDS) SIM_FIRST_SEED=$(SIM_FIRST_SEED) $(SIM_ENV) \
		$(CARGO) test --release --locked -p leasehold-lease --test sim -- --nocapture seeds_keep_every_invariant
sim-replay:
	@test -n "$(SIM_SEED)" || { echo "usage: SIM_SEED=<seed> make sim-replay"; exit 2; }
	SIM_SEED=$(SIM_SEED) $(SIM_ENV) $(CARGO) test --locked -p leasehold-lease --test sim -- --nocapture seeds_keep_every_invariant

## lint: fmt, clippy and rustdoc with warnings denied, the packaging check (`make package`), then the MSRV check.
## The MSRV check proves `rust-version` in Cargo.toml by building with exactly that toolchain. The machines this
## project builds on have one Rust toolchain and may not fetch another, so rust-version is that toolchain's version:
## then the clippy build above is the proof, and the check only confirms that the two agree. If they differ (a
## newer machine), it builds with the declared toolchain when rustup has it installed, and otherwise fails, saying
## what to do: install that toolchain, or set rust-version to one that can be checked.
lint:
	$(CARGO) fmt --all -- --check
	$(CARGO) clippy --workspace --all-targets --locked -- -D warnings
	RUSTDOCFLAGS="-D warnings" $(CARGO) doc --workspace --no-deps --locked
	$(MAKE) package
	@msrv=$$(sed -n 's/^rust-version = "\(.*\)"$$/\1/p' Cargo.toml); \
		have=$$(rustc --version | sed -n 's/^rustc \([0-9]*\.[0-9]*\).*/\1/p'); \
		test -n "$$msrv" || { echo "error: no rust-version in Cargo.toml"; exit 1; }; \
		if [ "$$msrv" = "$$have" ]; then \
			echo "MSRV $$msrv: checked (the build above used rustc $$have)"; \
		elif command -v rustup >/dev/null && rustup run "$$msrv" rustc --version >/dev/null 2>&1; then \
			echo "MSRV $$msrv: checking with that toolchain (the default is $$have)"; \
			CARGO_TARGET_DIR=$(or $(CARGO_TARGET_DIR),target)/msrv rustup run "$$msrv" cargo check --workspace --all-targets --locked; \
		else \
			echo "error: rust-version $$msrv cannot be checked here: the toolchain is rustc $$have and $$msrv is not installed; run 'rustup toolchain install $$msrv', or set rust-version to a toolchain you can build with"; exit 1; \
		fi

## package (part of `make lint`): what `cargo publish` would upload, checked without uploading and without
## credentials. Every workspace crate that may be published (leasehold-core, leasehold-policy and leasehold-lease; the others have
## publish = false) is packaged, and each package is then built on its own from its extracted sources
## (target/package) against crates.io's index, as a user would get it. cargo >= 1.90 checks crates of the workspace
## that depend on each other together, against a local overlay registry, so this works before any of them is on
## crates.io. --allow-dirty lets it run in a working tree with uncommitted changes (a clean clone is never dirty).
## About 2 minutes cold (a debug build of each package with the dependency features it alone selects), a few
## seconds warm.
.PHONY: package
package:
	$(CARGO) publish --dry-run --workspace --locked --allow-dirty

fmt:
	$(CARGO) fmt --all

## static: static (musl) release binaries of the agent and the stand-in API server, checked with `file` and `ldd`,
## then the deployment tests (tests/tests/manifests.rs and rbac.rs: election, handover on SIGTERM, spread tasks,
## Events and release under the manifests' RBAC) run against them. Not part of `make test`: a release build for a
## second target takes about 9 minutes on 2 cores. Installs the rustup target and musl-tools (apt) when missing. The
## static agent is checked for test hooks as `make no-test-hooks` checks the release one. The skewed-clock tests need
## a dynamically linked agent (libfaketime works through LD_PRELOAD): tests/tests/agent_edges.rs skips, saying so,
## when E2E_BIN_DIR points at a static one. The agent is built on its own, as the Dockerfile builds it: built together
## with the API server, cargo would unify the server's features into it (hyper's HTTP/2 server, 0.8 MB).
.PHONY: static
MUSL_TARGET := x86_64-unknown-linux-musl
STATIC_DIR = $(abspath $(or $(CARGO_TARGET_DIR),target))/$(MUSL_TARGET)/dist
static: tools
	@command -v rustup >/dev/null || { echo "error: rustup is required to add the $(MUSL_TARGET) target"; exit 1; }
	@rustup target list --installed | grep -qx $(MUSL_TARGET) || rustup target add $(MUSL_TARGET)
	@command -v musl-gcc >/dev/null || { \
		command -v apt-get >/dev/null || { echo "error: musl-gcc is required (install musl-tools)"; exit 1; }; \
		sudo=$$([ "$$(id -u)" = 0 ] || echo sudo); \
		$$sudo apt-get update -qq && $$sudo apt-get install -y -qq musl-tools; }
	$(CARGO) build --profile dist --locked --target $(MUSL_TARGET) -p leasehold
	$(CARGO) build --profile dist --locked --target $(MUSL_TARGET) -p leasehold-apiserver
	@for b in leasehold leasehold-apiserver; do \
		f=$(STATIC_DIR)/$$b; file "$$f"; \
		file "$$f" | grep -Eq 'statically linked|static-pie linked' || { echo "error: $$f is not static"; exit 1; }; \
		ldd "$$f" 2>&1 | grep -Eq 'not a dynamic executable|statically linked' || { echo "error: $$f has dynamic dependencies"; ldd "$$f"; exit 1; }; \
		echo "$$b: $$(stat -c %s "$$f") bytes, static"; \
	done
	@$(call no_test_hook_strings,$(STATIC_DIR)/leasehold)
	E2E_BIN_DIR=$(STATIC_DIR) $(CARGO) nextest run --locked -p leasehold-tests --test manifests --test rbac
