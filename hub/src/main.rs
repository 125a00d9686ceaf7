use clap::Parser;

/// kruise-hub
#[derive(Parser, Debug)]
#[command(name = "kruise-hub", version, about)]
struct Args {}

fn main() -> anyhow::Result<()> {
    let _args = Args::parse();
    anyhow::bail!("kruise-hub: not built yet")
}
