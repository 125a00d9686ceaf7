use clap::Parser;

/// kruise-daemon
#[derive(Parser, Debug)]
#[command(name = "kruise-daemon", version, about)]
struct Args {}

fn main() -> anyhow::Result<()> {
    let _args = Args::parse();
    anyhow::bail!("kruise-daemon: not built yet")
}
