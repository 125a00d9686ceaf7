use clap::Parser;

/// kruise-agent
#[derive(Parser, Debug)]
#[command(name = "kruise-agent", version, about)]
struct Args {}

fn main() -> anyhow::Result<()> {
    let _args = Args::parse();
    anyhow::bail!("kruise-agent: not built yet")
}
