//! `bench-elections`: the election bench driver; see `leasehold_bench_peers::driver`.

use clap::Parser;
use leasehold_bench_peers::driver::{DriverArgs, main_with};

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    main_with(DriverArgs::parse()).await
}
