//! The `orderflow` binary: one subcommand per role, so the same code runs as one process on a laptop
//! or as many in a cluster. Every role reads the stack's addresses from the environment (`stack.env`).

use clap::{Parser, Subcommand};
use orderflow_platform::{StackConfig, telemetry};

#[derive(Parser)]
#[command(name = "orderflow", version, about = "Event-driven order processing over change data capture")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Print the configuration this process would use, or the key that is missing or wrong.
    Config,
}

fn main() -> anyhow::Result<()> {
    telemetry::init();
    let cli = Cli::parse();
    match cli.command {
        Command::Config => {
            let config = StackConfig::from_env()?;
            println!("postgres       {}:{} databases {:?}", config.postgres.host, config.postgres.port, config.postgres.databases);
            println!("kafka          {}", config.kafka_bootstrap);
            println!("connect        {}", config.connect_url);
            println!("registry       {}", config.registry_url);
            println!("elasticsearch  {}", config.elasticsearch_url);
            println!("s3             {} bucket {}", config.s3.endpoint, config.s3.bucket);
        }
    }
    Ok(())
}
