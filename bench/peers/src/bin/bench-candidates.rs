//! `bench-candidates`: hosts K election candidates of one implementation; see `leasehold_bench_peers::runner`.

use clap::Parser;
use leasehold_bench_peers::runner::{RunnerArgs, main_with};

fn main() -> anyhow::Result<()> {
    main_with(RunnerArgs::parse())
}
