use clap::Parser;

/// kruise-local
#[derive(Parser, Debug)]
#[command(name = "kruise-local", version, about)]
struct Args {}

fn main() -> anyhow::Result<()> {
    let _args = Args::parse();
    anyhow::bail!("kruise-local: not built yet")
}
