//! kruise-local: a simulated member cluster (API server, nodes) for development, tests and the demo.

mod args;
mod nodes;

use clap::Parser;

fn main() -> anyhow::Result<()> {
    let args = args::Args::parse();
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info")),
        )
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .init();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    let result = runtime.block_on(args.run());
    // Idle blocking-pool threads would otherwise keep the process alive for a while.
    runtime.shutdown_timeout(std::time::Duration::from_millis(200));
    result
}
