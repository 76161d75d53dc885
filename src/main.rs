use std::process::ExitCode;

use clap::Parser;
use verdad::{cli, cli::config::Cli, telemetry};

#[tokio::main]
async fn main() -> ExitCode {
    let cli = Cli::parse();
    telemetry::init(cli.log_format);
    match cli::run(cli.command).await {
        Ok(code) => code,
        Err(error) => {
            eprintln!("verdad: {error:#}");
            ExitCode::FAILURE
        }
    }
}
