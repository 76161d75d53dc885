//! The PostgreSQL cluster the tests make their databases in: the one
//! `DATABASE_URL` names when set, else an embedded one started in a
//! temporary directory on first use and stopped when the run ends.

use std::{path::PathBuf, sync::OnceLock};

use verdad::server::embedded_pg::{EmbeddedOptions, EmbeddedPostgres};

/// The maintenance URL of the cluster tests create their databases in.
pub(super) fn cluster_url() -> &'static str {
    static URL: OnceLock<String> = OnceLock::new();
    URL.get_or_init(|| {
        if let Some(url) = std::env::var("DATABASE_URL")
            .ok()
            .filter(|url| !url.is_empty())
        {
            return url;
        }
        let embedded = EMBEDDED.get_or_init(|| {
            let dir = test_cluster_dir();
            let _ = std::fs::remove_dir_all(&dir);
            std::fs::create_dir_all(&dir).expect("cannot create the test cluster's directory");
            let cluster = EmbeddedPostgres::start(&EmbeddedOptions {
                port: None,
                data_dir: dir.join("pg"),
                ephemeral: true,
            })
            .unwrap_or_else(|e| panic!("cannot start the embedded PostgreSQL for the tests: {e}"));
            // SAFETY: registers a plain function to run at process exit.
            unsafe {
                libc::atexit(stop_embedded);
            }
            cluster
        });
        embedded.url("postgres")
    })
}

static EMBEDDED: OnceLock<EmbeddedPostgres> = OnceLock::new();

fn test_cluster_dir() -> PathBuf {
    std::env::temp_dir().join(format!("verdad-test-pg-{}", std::process::id()))
}

extern "C" fn stop_embedded() {
    if let Some(cluster) = EMBEDDED.get() {
        let _ = cluster.stop();
        let _ = std::fs::remove_dir_all(test_cluster_dir());
    }
}
