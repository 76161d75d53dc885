//! An embedded PostgreSQL: the system's own server binaries, run in a data
//! directory of Verdad's, when no `DATABASE_URL` is given.
//!
//! PostgreSQL refuses to run as root, so when Verdad runs as root the
//! cluster runs as an unprivileged system user (`postgres` where the
//! packages created it, else `nobody`) through `runuser`.

use std::{
    fs,
    net::TcpListener,
    os::unix::fs::{MetadataExt, PermissionsExt},
    path::{Path, PathBuf},
    process::{Command, Output},
};

use base64::{Engine, engine::general_purpose::URL_SAFE_NO_PAD};

/// The cluster's superuser.
const SUPERUSER: &str = "verdad";

#[derive(Debug, thiserror::Error)]
pub enum EmbeddedError {
    #[error(
        "no PostgreSQL server binaries (initdb, pg_ctl) on PATH or under /usr/lib/postgresql/*/bin: \
         install them (Debian/Ubuntu: apt-get install postgresql) or set DATABASE_URL"
    )]
    NoBinaries,
    #[error("{0}")]
    Setup(String),
    #[error("{command} failed: {detail}")]
    Command { command: String, detail: String },
    #[error(transparent)]
    Io(#[from] std::io::Error),
}

/// Settings of an embedded cluster.
#[derive(Debug, Clone)]
pub struct EmbeddedOptions {
    /// The cluster's data directory; created on first use.
    pub data_dir: PathBuf,
    /// Trades durability for speed (fsync off): for throwaway test clusters.
    pub ephemeral: bool,
    /// The port to listen on; a free one when None. A cluster restarted on
    /// its old port is found again by the clients that knew it.
    pub port: Option<u16>,
}

/// A running embedded cluster. [`EmbeddedPostgres::stop`] stops it if this
/// process started it; a cluster found already running (another `verdad`
/// started it) is left running.
#[derive(Debug)]
pub struct EmbeddedPostgres {
    bin_dir: PathBuf,
    data_dir: PathBuf,
    run_as: Option<String>,
    port: u16,
    password: String,
    owned: bool,
}

impl EmbeddedPostgres {
    /// Starts the cluster in `options.data_dir`, initialising it first if it
    /// is new, or attaches to it if it already runs.
    pub fn start(options: &EmbeddedOptions) -> Result<Self, EmbeddedError> {
        let bin_dir = find_bin_dir().ok_or(EmbeddedError::NoBinaries)?;
        let run_as = if running_as_root() {
            Some(unprivileged_user()?)
        } else {
            None
        };
        let data_dir = absolute(&options.data_dir)?;
        let password_file = password_file(&data_dir);

        let mut cluster = EmbeddedPostgres {
            bin_dir,
            data_dir,
            run_as,
            port: 0,
            password: String::new(),
            owned: false,
        };
        if !cluster.data_dir.join("PG_VERSION").exists() {
            cluster.init(&password_file)?;
        }
        cluster.password = fs::read_to_string(&password_file)
            .map_err(|e| {
                EmbeddedError::Setup(format!(
                    "cannot read the embedded database's password at {}: {e}",
                    password_file.display()
                ))
            })?
            .trim()
            .to_owned();

        if let Some(port) = cluster.running_port() {
            cluster.port = port;
            return Ok(cluster);
        }
        cluster.port = match options.port {
            Some(port) => port,
            None => free_port()?,
        };
        let mut options_arg = format!(
            "-c listen_addresses=127.0.0.1 -p {} -c unix_socket_directories=''",
            cluster.port
        );
        if options.ephemeral {
            // A test that ends while one of its connections is half-way
            // through authentication leaves a backend that DROP DATABASE
            // waits for until authentication_timeout (60 s by default).
            options_arg.push_str(
                " -c fsync=off -c synchronous_commit=off -c full_page_writes=off \
                 -c max_connections=300 -c authentication_timeout=2s",
            );
        }
        let log = cluster.data_dir.join("postgresql.log");
        cluster.pg_ctl(&[
            "start",
            "-w",
            "-t",
            "60",
            "-D",
            path_str(&cluster.data_dir)?,
            "-l",
            path_str(&log)?,
            "-o",
            &options_arg,
        ])?;
        cluster.owned = true;
        Ok(cluster)
    }

    /// The URL of `database` in this cluster.
    pub fn url(&self, database: &str) -> String {
        format!(
            "postgres://{SUPERUSER}:{}@127.0.0.1:{}/{database}",
            self.password, self.port
        )
    }

    /// The port the cluster listens on.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// Where the cluster keeps its data.
    pub fn data_dir(&self) -> &Path {
        &self.data_dir
    }

    /// Stops the cluster if this process started it.
    pub fn stop(&self) -> Result<(), EmbeddedError> {
        // A cluster stopped by other hands needs no stopping.
        if !self.owned || self.running_port().is_none() {
            return Ok(());
        }
        self.pg_ctl(&["stop", "-w", "-m", "fast", "-D", path_str(&self.data_dir)?])?;
        Ok(())
    }

    fn init(&self, password_file: &Path) -> Result<(), EmbeddedError> {
        fs::create_dir_all(&self.data_dir)?;
        fs::set_permissions(&self.data_dir, fs::Permissions::from_mode(0o700))?;
        let password = random_password()?;
        // initdb reads the password from a file the cluster user can read;
        // it is kept beside the data directory for Verdad's own connections.
        let pwfile = self.data_dir.with_extension("initpw");
        fs::write(&pwfile, &password)?;
        if let Some(user) = &self.run_as {
            let (uid, gid) = user_ids(user)?;
            std::os::unix::fs::chown(&self.data_dir, Some(uid), Some(gid))?;
            std::os::unix::fs::chown(&pwfile, Some(uid), Some(gid))?;
            self.check_reachable(user)?;
        }
        fs::set_permissions(&pwfile, fs::Permissions::from_mode(0o600))?;
        let result = self.run(
            "initdb",
            &[
                "-D",
                path_str(&self.data_dir)?,
                "-U",
                SUPERUSER,
                "--auth=scram-sha-256",
                &format!("--pwfile={}", path_str(&pwfile)?),
                "-E",
                "UTF8",
                "--locale=C",
            ],
        );
        let _ = fs::remove_file(&pwfile);
        result?;
        fs::write(password_file, &password)?;
        fs::set_permissions(password_file, fs::Permissions::from_mode(0o600))?;
        Ok(())
    }

    /// Fails clearly when the cluster user cannot reach the data directory
    /// (a parent directory private to root, such as a `mktemp -d`).
    fn check_reachable(&self, user: &str) -> Result<(), EmbeddedError> {
        let output = Command::new("runuser")
            .args(["-u", user, "--", "test", "-w"])
            .arg(&self.data_dir)
            .output()?;
        if output.status.success() {
            Ok(())
        } else {
            Err(EmbeddedError::Setup(format!(
                "the embedded PostgreSQL runs as the unprivileged user {user:?}, who cannot reach {}; \
                 choose a data directory that user can reach (--pg-dir) or set DATABASE_URL",
                self.data_dir.display()
            )))
        }
    }

    /// The port of a cluster already running in this data directory.
    fn running_port(&self) -> Option<u16> {
        let status = self
            .command("pg_ctl", &["status", "-D", path_str(&self.data_dir).ok()?])
            .output()
            .ok()?;
        if !status.status.success() {
            return None;
        }
        // The fourth line of postmaster.pid is the port.
        let pid_file = fs::read_to_string(self.data_dir.join("postmaster.pid")).ok()?;
        pid_file.lines().nth(3)?.trim().parse().ok()
    }

    fn pg_ctl(&self, args: &[&str]) -> Result<Output, EmbeddedError> {
        self.run("pg_ctl", args)
    }

    fn run(&self, program: &str, args: &[&str]) -> Result<Output, EmbeddedError> {
        let output = self.command(program, args).output()?;
        if output.status.success() {
            return Ok(output);
        }
        let mut detail = String::from_utf8_lossy(&output.stderr).trim().to_owned();
        if detail.is_empty() {
            detail = String::from_utf8_lossy(&output.stdout).trim().to_owned();
        }
        let log = self.data_dir.join("postgresql.log");
        if let Ok(text) = fs::read_to_string(&log) {
            let tail: Vec<&str> = text.lines().rev().take(5).collect();
            detail.push_str(&format!(
                "\nlast lines of {}:\n{}",
                log.display(),
                tail.into_iter().rev().collect::<Vec<_>>().join("\n")
            ));
        }
        Err(EmbeddedError::Command {
            command: program.to_owned(),
            detail,
        })
    }

    fn command(&self, program: &str, args: &[&str]) -> Command {
        let binary = self.bin_dir.join(program);
        let mut command = match &self.run_as {
            Some(user) => {
                let mut c = Command::new("runuser");
                c.args(["-u", user, "--"]).arg(binary);
                c
            }
            None => Command::new(binary),
        };
        command.args(args).env("LC_ALL", "C");
        // The cluster user may not be allowed into the caller's directory.
        command.current_dir("/");
        // Its own process group: a Ctrl-C meant for Verdad must not stop the
        // database while in-flight calls finish.
        std::os::unix::process::CommandExt::process_group(&mut command, 0);
        command
    }
}

fn path_str(path: &Path) -> Result<&str, EmbeddedError> {
    path.to_str()
        .ok_or_else(|| EmbeddedError::Setup(format!("path {} is not valid UTF-8", path.display())))
}

fn absolute(path: &Path) -> Result<PathBuf, EmbeddedError> {
    Ok(if path.is_absolute() {
        path.to_owned()
    } else {
        std::env::current_dir()?.join(path)
    })
}

fn password_file(data_dir: &Path) -> PathBuf {
    data_dir.with_extension("password")
}

fn random_password() -> Result<String, EmbeddedError> {
    let mut bytes = [0u8; 24];
    getrandom::fill(&mut bytes).map_err(|e| EmbeddedError::Setup(format!("no randomness: {e}")))?;
    Ok(URL_SAFE_NO_PAD.encode(bytes))
}

/// The directory holding `initdb` and `pg_ctl`: on PATH first, else the
/// newest `/usr/lib/postgresql/<version>/bin` (Debian keeps them there).
pub fn find_bin_dir() -> Option<PathBuf> {
    let has_tools = |dir: &Path| dir.join("initdb").is_file() && dir.join("pg_ctl").is_file();
    if let Some(path) = std::env::var_os("PATH")
        && let Some(dir) = std::env::split_paths(&path).find(|dir| has_tools(dir))
    {
        return Some(dir);
    }
    let mut versions: Vec<(u32, PathBuf)> = fs::read_dir("/usr/lib/postgresql")
        .ok()?
        .filter_map(|entry| {
            let entry = entry.ok()?;
            let version = entry.file_name().to_str()?.parse::<u32>().ok()?;
            let bin = entry.path().join("bin");
            has_tools(&bin).then_some((version, bin))
        })
        .collect();
    versions.sort();
    versions.pop().map(|(_, bin)| bin)
}

/// PostgreSQL `major`'s `program`, a client such as `pg_dump`: in
/// `/usr/lib/postgresql/<major>/bin` (where Debian keeps each version's),
/// else on PATH if it is of that major version. A client of another major
/// version may refuse the server, or print its objects otherwise.
pub fn find_program(program: &str, major: u32) -> Option<PathBuf> {
    let versioned = Path::new("/usr/lib/postgresql")
        .join(major.to_string())
        .join("bin")
        .join(program);
    if versioned.is_file() {
        return Some(versioned);
    }
    let path = std::env::var_os("PATH")?;
    let found = std::env::split_paths(&path)
        .map(|dir| dir.join(program))
        .find(|candidate| candidate.is_file())?;
    // "pg_dump (PostgreSQL) 15.20 (Debian 15.20-0+deb12u1)"
    let output = Command::new(&found).arg("--version").output().ok()?;
    let version = String::from_utf8_lossy(&output.stdout);
    let found_major: u32 = version
        .split_whitespace()
        .nth(2)?
        .split('.')
        .next()?
        .parse()
        .ok()?;
    (found_major == major).then_some(found)
}

fn running_as_root() -> bool {
    fs::metadata("/proc/self")
        .map(|m| m.uid() == 0)
        .unwrap_or(false)
}

fn unprivileged_user() -> Result<String, EmbeddedError> {
    for user in ["postgres", "nobody"] {
        if user_ids(user).is_ok() {
            return Ok(user.to_owned());
        }
    }
    Err(EmbeddedError::Setup(
        "running as root, and neither the user postgres nor nobody exists to run PostgreSQL as"
            .into(),
    ))
}

fn user_ids(user: &str) -> Result<(u32, u32), EmbeddedError> {
    let id = |flag: &str| -> Result<u32, EmbeddedError> {
        let output = Command::new("id").args([flag, user]).output()?;
        String::from_utf8_lossy(&output.stdout)
            .trim()
            .parse()
            .map_err(|_| EmbeddedError::Setup(format!("no system user {user:?}")))
    };
    Ok((id("-u")?, id("-g")?))
}

fn free_port() -> Result<u16, EmbeddedError> {
    Ok(TcpListener::bind("127.0.0.1:0")?.local_addr()?.port())
}
