//! `verdad bench`: measurements of Verdad against plain PostgreSQL, run from
//! the shipped binary on the operator's own hardware.

mod analyses;
mod ingest;
mod server;
mod workload;

use std::process::ExitCode;

use crate::config::BenchCommand;

pub async fn run(command: BenchCommand) -> anyhow::Result<ExitCode> {
    match command {
        BenchCommand::Ingest(args) => ingest::run(args).await,
        BenchCommand::Analyses(args) => analyses::run(args).await,
    }
}

/// `url` with its database replaced by `database`; user, password, host,
/// port and query parameters stay as they are.
fn with_database(url: &str, database: &str) -> String {
    let (base, query) = match url.split_once('?') {
        Some((base, query)) => (base, format!("?{query}")),
        None => (url, String::new()),
    };
    let scheme_end = base.find("://").map_or(0, |i| i + 3);
    let authority_end = base[scheme_end..]
        .find('/')
        .map_or(base.len(), |i| scheme_end + i);
    format!("{}/{database}{query}", &base[..authority_end])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn replaces_only_the_database_of_a_url() {
        assert_eq!(
            with_database("postgres://u:p@127.0.0.1:5432/verdad", "bench"),
            "postgres://u:p@127.0.0.1:5432/bench"
        );
        assert_eq!(
            with_database("postgres://u@db/verdad?sslmode=require", "bench"),
            "postgres://u@db/bench?sslmode=require"
        );
        assert_eq!(
            with_database("postgresql://db:5432", "bench"),
            "postgresql://db:5432/bench"
        );
    }
}
