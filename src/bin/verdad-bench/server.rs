//! The server under test: this very binary's `serve`, run as a child
//! process so that its memory can be measured on its own.

use std::{
    net::{SocketAddr, TcpListener},
    process::Stdio,
    time::Duration,
};

use anyhow::{Context, bail};
use tokio::{
    process::{Child, Command},
    time::Instant,
};
use tonic::transport::Endpoint;
use tonic_health::pb::{
    HealthCheckRequest, health_check_response::ServingStatus, health_client::HealthClient,
};

/// How long the server may take to answer the health check as SERVING.
const STARTUP_LIMIT: Duration = Duration::from_secs(30);
/// How often the health check is tried while the server starts.
const STARTUP_POLL: Duration = Duration::from_millis(100);
/// How long the server may take to stop after SIGTERM: its shutdown grace
/// (10 s by default) and a little more.
const STOP_LIMIT: Duration = Duration::from_secs(15);

/// A running `verdad serve`, killed if dropped before [`Self::stop`].
pub(super) struct ServerProcess {
    child: Child,
    pub(super) addr: SocketAddr,
}

impl ServerProcess {
    /// Starts `verdad serve` on a free loopback port over `database_url` and
    /// waits until it answers the health check as SERVING.
    pub(super) async fn start(database_url: &str, db_max_connections: u32) -> anyhow::Result<Self> {
        Self::start_with(database_url, db_max_connections, &[]).await
    }

    /// As [`Self::start`], with `args` added to `verdad serve`'s.
    pub(super) async fn start_with(
        database_url: &str,
        db_max_connections: u32,
        args: &[String],
    ) -> anyhow::Result<Self> {
        let addr = free_loopback_addr()?;
        let child = Command::new(verdad_binary()?)
            .arg("serve")
            .arg("--listen-addr")
            .arg(addr.to_string())
            .arg("--db-max-connections")
            .arg(db_max_connections.to_string())
            .args(args)
            .env("DATABASE_URL", database_url)
            // The bench made its own demo data; `--demo` from the
            // environment would only print a key nobody sees.
            .env_remove("VERDAD_DEMO")
            // Warnings and errors only: one log line per call would cost
            // the server time the bench would count. Slow statements are
            // what the analyses bench measures, not news.
            .env("RUST_LOG", "warn,sqlx::query=error")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::inherit())
            .kill_on_drop(true)
            .spawn()
            .context("cannot start the server (verdad serve)")?;
        let mut server = ServerProcess { child, addr };
        server.wait_until_serving().await?;
        Ok(server)
    }

    async fn wait_until_serving(&mut self) -> anyhow::Result<()> {
        let deadline = Instant::now() + STARTUP_LIMIT;
        loop {
            if let Some(status) = self.child.try_wait()? {
                bail!("the server exited before serving ({status})");
            }
            if is_serving(self.addr).await {
                return Ok(());
            }
            if Instant::now() >= deadline {
                bail!(
                    "the server on {} did not answer the health check as SERVING within {} s",
                    self.addr,
                    STARTUP_LIMIT.as_secs()
                );
            }
            tokio::time::sleep(STARTUP_POLL).await;
        }
    }

    /// The server's process id, while it runs.
    pub(super) fn pid(&self) -> Option<u32> {
        self.child.id()
    }

    /// The server's peak resident memory so far (`VmHWM`), in bytes; `None`
    /// where `/proc` does not tell.
    pub(super) fn peak_memory_bytes(&self) -> Option<u64> {
        self.memory_figure("VmHWM:")
    }

    /// Starts the peak of [`Self::peak_memory_bytes`] again from the
    /// memory the server holds now (Linux's `clear_refs`), so that a phase's
    /// peak is its own; where that is refused the peak stays the run's.
    pub(super) fn reset_peak_memory(&self) {
        if let Some(pid) = self.child.id()
            && let Err(error) = std::fs::write(format!("/proc/{pid}/clear_refs"), "5")
        {
            tracing::warn!(%error, "the server's peak memory cannot be reset");
        }
    }

    /// The server's resident memory now (`VmRSS`), in bytes.
    pub(super) fn memory_bytes(&self) -> Option<u64> {
        self.memory_figure("VmRSS:")
    }

    fn memory_figure(&self, name: &str) -> Option<u64> {
        memory_of(self.child.id()?, name)
    }

    /// Stops the server as an orchestrator would, with SIGTERM, and waits
    /// for it; kills it if it does not stop in time.
    pub(super) async fn stop(mut self) -> anyhow::Result<()> {
        let terminated = match self.child.id() {
            // libc is only a dev-dependency: the kill command sends SIGTERM.
            Some(pid) => Command::new("kill")
                .arg("-TERM")
                .arg(pid.to_string())
                .stderr(Stdio::null())
                .status()
                .await
                .is_ok_and(|status| status.success()),
            None => false,
        };
        if !terminated {
            self.child.start_kill().context("cannot stop the server")?;
        }
        match tokio::time::timeout(STOP_LIMIT, self.child.wait()).await {
            Ok(status) => {
                let status = status.context("cannot wait for the server to stop")?;
                if !status.success() {
                    tracing::warn!(%status, "the server did not exit cleanly");
                }
            }
            Err(_) => {
                tracing::warn!("the server did not stop after SIGTERM: killing it");
                self.child.kill().await.context("cannot kill the server")?;
            }
        }
        Ok(())
    }
}

/// The memory figure `name` (such as `VmRSS:`) of process `pid`, in bytes;
/// `None` where `/proc` does not tell.
pub(super) fn memory_of(pid: u32, name: &str) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    parse_kib(&status, name)
}

/// A loopback address with a port nobody listens on right now.
fn free_loopback_addr() -> anyhow::Result<SocketAddr> {
    let listener =
        TcpListener::bind("127.0.0.1:0").context("cannot find a free port for the server")?;
    Ok(listener.local_addr()?)
}

/// Whether the server on `addr` answers the health check as SERVING.
async fn is_serving(addr: SocketAddr) -> bool {
    let Ok(endpoint) = Endpoint::from_shared(format!("http://{addr}")) else {
        return false;
    };
    let Ok(channel) = endpoint
        .connect_timeout(Duration::from_secs(1))
        .timeout(Duration::from_secs(1))
        .connect()
        .await
    else {
        return false;
    };
    let request = HealthCheckRequest {
        service: String::new(),
    };
    match HealthClient::new(channel).check(request).await {
        Ok(response) => response.into_inner().status() == ServingStatus::Serving,
        Err(_) => false,
    }
}

/// The figure `name` (such as `VmHWM:`) of a `/proc/<pid>/status` text, in
/// bytes.
fn parse_kib(status: &str, name: &str) -> Option<u64> {
    let line = status.lines().find(|line| line.starts_with(name))?;
    let kib: u64 = line
        .trim_start_matches(name)
        .trim()
        .trim_end_matches("kB")
        .trim()
        .parse()
        .ok()?;
    Some(kib * 1024)
}

/// The `verdad` binary beside this one: cargo builds both into one
/// directory, and the image installs both into one.
fn verdad_binary() -> anyhow::Result<std::path::PathBuf> {
    let bench = std::env::current_exe().context("cannot find the verdad-bench binary")?;
    let verdad = bench.with_file_name(format!("verdad{}", std::env::consts::EXE_SUFFIX));
    anyhow::ensure!(
        verdad.is_file(),
        "cannot find the verdad binary at {}: build it too (cargo build --release --bin verdad)",
        verdad.display()
    );
    Ok(verdad)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_the_peak_resident_memory() {
        let status =
            "Name:\tverdad\nVmPeak:\t  912344 kB\nVmHWM:\t   86244 kB\nVmRSS:\t   80000 kB\n";
        assert_eq!(parse_kib(status, "VmHWM:"), Some(86_244 * 1024));
        assert_eq!(parse_kib(status, "VmRSS:"), Some(80_000 * 1024));
        assert_eq!(parse_kib("Name:\tverdad\n", "VmHWM:"), None);
    }
}
