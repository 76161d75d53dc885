//! `verdad serve` as a child process over a test's database: for what only
//! a whole process shows (its metrics registry, its log output, signals).

use std::{
    net::{SocketAddr, TcpListener},
    process::{ExitStatus, Stdio},
    sync::{Arc, Mutex},
    time::Duration,
};

use tokio::{
    io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader},
    net::TcpStream,
    process::{Child, Command},
    time::Instant,
};
use tonic::transport::Channel;
use tonic_health::pb::{
    HealthCheckRequest, health_check_response::ServingStatus, health_client::HealthClient,
};

pub(crate) struct ServeProcess {
    child: Child,
    pub(crate) addr: SocketAddr,
    /// Everything the server wrote to stderr so far (its log).
    log: Arc<Mutex<String>>,
    /// Everything it wrote to stdout so far.
    output: Arc<Mutex<String>>,
}

/// Collects the lines `stream` gives into `sink`.
fn collect(stream: impl tokio::io::AsyncRead + Unpin + Send + 'static, sink: Arc<Mutex<String>>) {
    tokio::spawn(async move {
        let mut lines = BufReader::new(stream).lines();
        while let Ok(Some(line)) = lines.next_line().await {
            let mut text = sink.lock().unwrap();
            text.push_str(&line);
            text.push('\n');
        }
    });
}

/// A loopback address nobody listens on right now.
pub(crate) fn free_addr() -> SocketAddr {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("no free port")
}

impl ServeProcess {
    /// Starts `verdad serve` over `database_url` with `args` besides and
    /// waits until its health check answers SERVING.
    pub(crate) async fn start(database_url: &str, args: &[&str]) -> Self {
        let addr = free_addr();
        let mut child = Command::new(env!("CARGO_BIN_EXE_verdad"))
            .arg("serve")
            .arg("--listen-addr")
            .arg(addr.to_string())
            .args(args)
            .env("DATABASE_URL", database_url)
            .env("RUST_LOG", "info")
            .env_remove("VERDAD_DEMO")
            .env_remove("VERDAD_METRICS_ADDR")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .expect("cannot start verdad serve");
        let log = Arc::new(Mutex::new(String::new()));
        collect(child.stderr.take().expect("stderr is piped"), log.clone());
        let output = Arc::new(Mutex::new(String::new()));
        collect(
            child.stdout.take().expect("stdout is piped"),
            output.clone(),
        );
        let process = ServeProcess {
            child,
            addr,
            log,
            output,
        };
        process.wait_until_serving().await;
        process
    }

    async fn wait_until_serving(&self) {
        let deadline = Instant::now() + Duration::from_secs(30);
        while Instant::now() < deadline {
            if let Ok(channel) = Channel::from_shared(format!("http://{}", self.addr))
                .unwrap()
                .connect()
                .await
            {
                let serving = HealthClient::new(channel)
                    .check(HealthCheckRequest::default())
                    .await
                    .is_ok_and(|r| r.into_inner().status() == ServingStatus::Serving);
                if serving {
                    return;
                }
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        panic!("verdad serve did not serve within 30 s:\n{}", self.log());
    }

    pub(crate) async fn channel(&self) -> Channel {
        Channel::from_shared(format!("http://{}", self.addr))
            .unwrap()
            .connect()
            .await
            .expect("cannot connect to verdad serve")
    }

    /// What the server has logged so far.
    pub(crate) fn log(&self) -> String {
        self.log.lock().unwrap().clone()
    }

    /// What the server has printed so far.
    pub(crate) fn stdout(&self) -> String {
        self.output.lock().unwrap().clone()
    }

    /// Sends SIGTERM and waits (at most 20 s) for the process to end.
    pub(crate) async fn terminate(&mut self) -> ExitStatus {
        self.sigterm();
        self.wait().await
    }

    /// Sends SIGTERM, as an orchestrator stopping the container does.
    pub(crate) fn sigterm(&self) {
        let pid = self.child.id().expect("the server has already ended") as i32;
        // SAFETY: sends a signal to our own child process.
        unsafe {
            libc::kill(pid, libc::SIGTERM);
        }
    }

    /// Kills the process outright (SIGKILL), as a crash or the OOM killer
    /// does: nothing of it runs after this.
    pub(crate) async fn kill(&mut self) {
        self.child.kill().await.expect("cannot kill the server");
    }

    /// Waits (at most 20 s) for the process to end.
    pub(crate) async fn wait(&mut self) -> ExitStatus {
        tokio::time::timeout(Duration::from_secs(20), self.child.wait())
            .await
            .expect("the server did not stop within 20 s")
            .expect("cannot wait for the server")
    }
}

/// The body of a plain HTTP GET of `addr`.
pub(crate) async fn http_get(addr: SocketAddr, path: &str) -> String {
    let mut stream = TcpStream::connect(addr).await.expect("cannot connect");
    // HTTP/1.0, so that the body comes whole rather than in chunks.
    let request = format!("GET {path} HTTP/1.0\r\nHost: {addr}\r\n\r\n");
    stream.write_all(request.as_bytes()).await.unwrap();
    let mut response = String::new();
    stream.read_to_string(&mut response).await.unwrap();
    assert!(
        response.starts_with("HTTP/1.") && response[..12].ends_with(" 200"),
        "GET {path}: {response}"
    );
    response
        .split_once("\r\n\r\n")
        .map(|(_, body)| body.to_owned())
        .unwrap_or_default()
}
