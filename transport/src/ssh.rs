use std::collections::HashMap;
use std::hash::{Hash, Hasher};
use std::io;
use std::path::{Path, PathBuf};
use std::process::{ExitStatus, Stdio};
use std::sync::{Arc, Mutex, OnceLock, PoisonError};
use std::time::Duration;

use crate::{BoxFuture, CommandTransport, Connection, Diagnosis, Step, Transport, TransportError};

/// How long an idle shared ssh connection stays up after its last gateway
/// closed (OpenSSH `ControlPersist`, seconds).
const CONTROL_PERSIST_SECS: u32 = 5;
/// How long setting up a shared connection may take before the transport
/// connects on its own instead.
const MASTER_TIMEOUT: Duration = Duration::from_secs(30);

/// The OpenSSH client running a remote command whose stdin/stdout carry the
/// worker's stream (`ssh -oBatchMode=yes [-F config] ARGS -- 'COMMAND'`).
///
/// `ARGS` are the `ssh=` value split at whitespace (host, `-p PORT`, `-i KEY`,
/// `-o ...`), so ssh_config, agents and ProxyJump work as for a plain `ssh`.
/// BatchMode makes ssh fail instead of prompting.
///
/// Connection sharing: unless turned off with [`SshTransport::multiplex`],
/// transports with the same arguments share one ssh connection (OpenSSH
/// `ControlMaster=auto` with a `ControlPath` in a private 0700 directory,
/// `ControlPersist` of a few seconds, after which the master exits and
/// removes its socket). The shared connection is set up once
/// (`ssh -N`) while the transports to that destination wait, so that they
/// join it instead of racing it.
///
/// # Examples
///
/// ```
/// # mod execnet { pub mod transport { pub use execnet_transport::*; } }
/// use execnet::transport::SshTransport;
///
/// let ssh = SshTransport::new("-p 2222 build@ci-host", vec!["python3".into(), "-c".into(), "print(1)".into()])
///     .config(Some("/etc/execnet/ssh_config"))
///     .multiplex(false);
/// assert_eq!(ssh.description(), "ssh -p 2222 build@ci-host");
/// assert_eq!(
///     ssh.argv(),
///     ["-oBatchMode=yes", "-F", "/etc/execnet/ssh_config", "-p", "2222", "build@ci-host", "--", "python3 -c 'print(1)'"]
/// );
/// ```
#[derive(Debug)]
pub struct SshTransport {
    args: Vec<String>,
    config: Option<String>,
    command: Vec<String>,
    multiplex: bool,
}

impl SshTransport {
    /// ssh with `args` (the `ssh=` value) running `command` (argv; each word is
    /// shell-quoted for the remote shell).
    pub fn new(args: &str, command: Vec<String>) -> Self {
        Self {
            args: args.split_whitespace().map(str::to_string).collect(),
            config: None,
            command,
            multiplex: true,
        }
    }

    /// Use this ssh_config file (`ssh -F`).
    pub fn config(mut self, path: Option<&str>) -> Self {
        self.config = path.map(str::to_string);
        self
    }

    /// Share one ssh connection per destination (default `true`).
    pub fn multiplex(mut self, on: bool) -> Self {
        self.multiplex = on;
        self
    }

    /// The full ssh command line (without the `ssh` program itself).
    pub fn argv(&self) -> Vec<String> {
        self.argv_with(self.control_path().as_deref())
    }

    fn argv_with(&self, control: Option<&Path>) -> Vec<String> {
        let mut argv = vec!["-oBatchMode=yes".to_string()];
        if let Some(config) = &self.config {
            argv.push("-F".into());
            argv.push(config.clone());
        }
        if let Some(path) = control {
            argv.push("-oControlMaster=auto".into());
            argv.push(format!("-oControlPath={}", path.display()));
            argv.push(format!("-oControlPersist={CONTROL_PERSIST_SECS}"));
        }
        argv.extend(self.args.iter().cloned());
        argv.push("--".into());
        let quoted: Vec<String> = self.command.iter().map(|w| shell_quote(w)).collect();
        argv.push(quoted.join(" "));
        argv
    }

    /// The control socket of this destination, if multiplexing applies.
    fn control_path(&self) -> Option<PathBuf> {
        let user_controls = self.args.iter().any(|a| {
            let a = a.to_ascii_lowercase();
            a.contains("controlmaster") || a.contains("controlpath")
        });
        if !self.multiplex || user_controls {
            return None;
        }
        let dir = control_dir()?;
        // The arguments (key, port, user, options) and the config file all
        // go into the name: a different key must never ride on a connection
        // that another key authenticated. `%C` adds OpenSSH's own hash.
        let mut hasher = std::collections::hash_map::DefaultHasher::new();
        (&self.args, &self.config).hash(&mut hasher);
        Some(dir.join(format!("{:016x}-%C", hasher.finish())))
    }

    /// A short description for errors: `ssh ARGS`.
    pub fn description(&self) -> String {
        format!("ssh {}", self.args.join(" "))
    }

    /// Start ssh now. With multiplexing and no shared connection yet, first
    /// start the shared connection (`ssh -N -oControlMaster=yes`, which
    /// returns once it listens) while other transports to the same
    /// destination wait; if that fails, this transport connects on its own so
    /// that its error says why.
    ///
    /// # Examples
    ///
    /// ```
    /// # mod execnet { pub mod transport { pub use execnet_transport::*; } }
    /// # futures_lite::future::block_on(async {
    /// use execnet::transport::{SshTransport, Step};
    ///
    /// // Nothing listens on port 1: ssh exits with 255 and says why.
    /// let ssh = SshTransport::new("-p 1 -oConnectTimeout=5 127.0.0.1", vec!["true".into()]).multiplex(false);
    /// let conn = ssh.open().await?; // ssh itself started
    /// let process = conn.process.expect("the ssh client");
    /// let status = process.wait().await?;
    /// assert_eq!(status.code(), Some(255));
    /// # Ok::<_, Box<dyn std::error::Error>>(()) }).unwrap();
    /// ```
    pub async fn open(&self) -> Result<Connection, TransportError> {
        let mut control = self.control_path();
        if let Some(path) = control.clone() {
            if !socket_exists(&path) {
                let lock = setup_lock(&path);
                let mut failed = lock.lock().await;
                if *failed {
                    control = None;
                } else if !socket_exists(&path) && !self.start_master(&path).await {
                    *failed = true;
                    control = None;
                }
            }
        }
        let mut cmd = async_process::Command::new("ssh");
        cmd.args(self.argv_with(control.as_deref()));
        CommandTransport::new(cmd, self.description()).spawn()
    }

    /// Start the shared connection; whether it is up.
    async fn start_master(&self, path: &Path) -> bool {
        let mut argv = vec!["-oBatchMode=yes".to_string()];
        if let Some(config) = &self.config {
            argv.push("-F".into());
            argv.push(config.clone());
        }
        argv.push("-oControlMaster=yes".into());
        argv.push(format!("-oControlPath={}", path.display()));
        argv.push(format!("-oControlPersist={CONTROL_PERSIST_SECS}"));
        argv.push("-N".into());
        argv.extend(self.args.iter().cloned());
        let child = async_process::Command::new("ssh")
            .args(&argv)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .kill_on_drop(true)
            .spawn();
        let Ok(mut child) = child else { return false };
        let status = futures_lite::future::or(async { child.status().await.ok() }, async {
            async_io::Timer::after(MASTER_TIMEOUT).await;
            None
        })
        .await;
        status.is_some_and(|s| s.success())
    }
}

impl Transport for SshTransport {
    fn connect(&mut self) -> BoxFuture<'_, Result<Connection, TransportError>> {
        Box::pin(self.open())
    }

    /// Reads ssh's exit status and stderr ([`SshFailure::classify`]): an
    /// unknown host, a refused connection or key, a host key mismatch, a
    /// missing or old remote python.
    fn diagnose(&self, status: Option<ExitStatus>, stderr: &str) -> Option<Diagnosis> {
        let failure = SshFailure::classify(status.and_then(|s| s.code()), stderr)?;
        Some(failure.explain(&self.description()))
    }
}

/// `word` quoted for a POSIX shell: as is when it is plain, else in single
/// quotes (with `'` written as `'\''`).
///
/// # Examples
///
/// ```
/// # mod execnet { pub mod transport { pub use execnet_transport::*; } }
/// use execnet::transport::shell_quote;
///
/// assert_eq!(shell_quote("python3"), "python3");
/// assert_eq!(shell_quote("print('hi')"), r"'print('\''hi'\'')'");
/// ```
pub fn shell_quote(word: &str) -> String {
    let plain = !word.is_empty()
        && word
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-_./=:,+@%".contains(&b));
    if plain {
        word.to_string()
    } else {
        format!("'{}'", word.replace('\'', r"'\''"))
    }
}

/// What went wrong, read from ssh's exit status and stderr.
///
/// # Examples
///
/// ```
/// # mod execnet { pub mod transport { pub use execnet_transport::*; } }
/// use execnet::transport::{SshFailure, Step};
///
/// let stderr = "build@ci-host: Permission denied (publickey).";
/// let failure = SshFailure::classify(Some(255), stderr).expect("a known failure");
/// assert!(matches!(failure, SshFailure::Auth(_)));
/// let diagnosis = failure.explain("ssh build@ci-host");
/// assert_eq!(diagnosis.step, Step::Auth);
/// assert!(diagnosis.message.contains("BatchMode"));
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum SshFailure {
    /// The host name does not resolve.
    UnknownHost(String),
    /// Nobody listens, or the host cannot be reached (`host port N: reason`).
    Connect(String),
    /// The server refused every key / password.
    Auth(String),
    /// The host key does not match `known_hosts` (or is unknown under
    /// strict checking).
    HostKey(String),
    /// The remote shell did not find the interpreter.
    PythonMissing(String),
    /// The remote interpreter is older than the worker needs.
    PythonTooOld(String),
}

impl SshFailure {
    /// Classify a failed ssh from its exit code and the tail of its stderr.
    pub fn classify(code: Option<i32>, stderr: &str) -> Option<SshFailure> {
        let line = |needle: &str| {
            stderr
                .lines()
                .find(|l| l.contains(needle))
                .map(|l| l.trim().to_string())
        };
        if let Some(l) = line("the worker needs Python") {
            return Some(SshFailure::PythonTooOld(l));
        }
        if code == Some(127) || stderr.contains("command not found") {
            let l = line("not found").unwrap_or_else(|| "exit status 127".into());
            return Some(SshFailure::PythonMissing(l));
        }
        if code != Some(255) {
            return None;
        }
        if let Some(l) = line("Could not resolve hostname") {
            let host = l
                .split("hostname ")
                .nth(1)
                .and_then(|rest| rest.split(':').next())
                .unwrap_or("?")
                .to_string();
            return Some(SshFailure::UnknownHost(format!("{host} ({l})")));
        }
        if let Some(l) = line("Host key verification failed")
            .or_else(|| line("REMOTE HOST IDENTIFICATION HAS CHANGED"))
            .or_else(|| line("No ED25519 host key is known"))
        {
            return Some(SshFailure::HostKey(l));
        }
        if let Some(l) = line("Permission denied").or_else(|| line("Too many authentication")) {
            return Some(SshFailure::Auth(l));
        }
        for needle in [
            "Connection refused",
            "Connection timed out",
            "No route to host",
            "Network is unreachable",
            "Connection closed by",
            "Connection reset by",
        ] {
            if let Some(l) = line(needle) {
                return Some(SshFailure::Connect(l));
            }
        }
        None
    }
}

impl SshFailure {
    /// The failed step and a message for `what` (`ssh ARGS`) that says what
    /// to do about it.
    pub fn explain(self, what: &str) -> Diagnosis {
        let (step, message) = match self {
            SshFailure::UnknownHost(host) => (Step::Host, format!("{what}: unknown host {host}")),
            SshFailure::Connect(line) => (Step::Connect, format!("{what}: cannot connect: {line}")),
            SshFailure::Auth(line) => (
                Step::Auth,
                format!("{what}: authentication refused ({line}); ssh runs with BatchMode=yes, so keys must work without a prompt"),
            ),
            SshFailure::HostKey(line) => (
                Step::Auth,
                format!("{what}: host key mismatch or unknown host key ({line})"),
            ),
            SshFailure::PythonMissing(line) => (
                Step::Interpreter,
                format!("{what}: the remote python was not found ({line}); set python= to the remote interpreter"),
            ),
            SshFailure::PythonTooOld(line) => (
                Step::Interpreter,
                format!("{what}: the remote python is too old ({line})"),
            ),
        };
        Diagnosis::new(step, message)
    }
}

/// The private directory of the control sockets: `$XDG_RUNTIME_DIR/execnet-ssh`
/// or `/tmp/execnet-ssh-UID`, mode 0700 and ours; `None` (no sharing) if it
/// cannot be made so.
fn control_dir() -> Option<PathBuf> {
    static DIR: OnceLock<Option<PathBuf>> = OnceLock::new();
    DIR.get_or_init(|| {
        let uid = rustix::process::getuid().as_raw();
        let dir = match std::env::var_os("XDG_RUNTIME_DIR") {
            Some(base) if Path::new(&base).is_dir() => Path::new(&base).join("execnet-ssh"),
            _ => PathBuf::from(format!("/tmp/execnet-ssh-{uid}")),
        };
        private_dir(&dir, uid).ok().map(|()| dir)
    })
    .clone()
}

fn private_dir(dir: &Path, uid: u32) -> io::Result<()> {
    use std::os::unix::fs::{DirBuilderExt, MetadataExt, PermissionsExt};
    match std::fs::DirBuilder::new().mode(0o700).create(dir) {
        Ok(()) => {}
        Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {}
        Err(e) => return Err(e),
    }
    // Not a symlink planted by someone else, ours, nobody else's to enter.
    let meta = std::fs::symlink_metadata(dir)?;
    if !meta.is_dir() || meta.uid() != uid {
        return Err(io::Error::other("not our directory"));
    }
    if meta.permissions().mode() & 0o077 != 0 {
        std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o700))?;
    }
    Ok(())
}

fn socket_exists(path: &Path) -> bool {
    // `%C` is expanded by ssh; we only know the directory entry's prefix.
    let (Some(dir), Some(name)) = (path.parent(), path.file_name()) else {
        return false;
    };
    let prefix = name.to_string_lossy().replace("%C", "");
    std::fs::read_dir(dir).is_ok_and(|entries| {
        entries
            .filter_map(Result::ok)
            .any(|e| e.file_name().to_string_lossy().starts_with(&prefix))
    })
}

/// One lock per destination, held while its shared connection is set up;
/// it guards whether setting it up failed (then nobody tries again).
fn setup_lock(path: &Path) -> Arc<async_lock::Mutex<bool>> {
    static LOCKS: OnceLock<Mutex<HashMap<PathBuf, Arc<async_lock::Mutex<bool>>>>> = OnceLock::new();
    let mut locks = LOCKS
        .get_or_init(Default::default)
        .lock()
        .unwrap_or_else(PoisonError::into_inner);
    locks.entry(path.to_path_buf()).or_default().clone()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quoting() {
        assert_eq!(shell_quote("python3"), "python3");
        assert_eq!(shell_quote("a b"), "'a b'");
        assert_eq!(shell_quote("it's"), r"'it'\''s'");
        assert_eq!(shell_quote(""), "''");
    }

    #[test]
    fn argv_shape() {
        let t = SshTransport::new(
            "-p 2222 host",
            vec!["python3".into(), "-c".into(), "x y".into()],
        )
        .config(Some("cfg"))
        .multiplex(false);
        assert_eq!(
            t.argv(),
            [
                "-oBatchMode=yes",
                "-F",
                "cfg",
                "-p",
                "2222",
                "host",
                "--",
                "python3 -c 'x y'"
            ]
        );
    }

    #[test]
    fn classifies_stderr() {
        let c = SshFailure::classify;
        assert!(matches!(
            c(Some(255), "ssh: Could not resolve hostname nope.invalid: Name or service not known"),
            Some(SshFailure::UnknownHost(h)) if h.starts_with("nope.invalid ")
        ));
        assert!(matches!(
            c(Some(255), "ssh: connect to host 127.0.0.1 port 1: Connection refused"),
            Some(SshFailure::Connect(l)) if l.contains("port 1")
        ));
        assert!(matches!(
            c(Some(255), "root@127.0.0.1: Permission denied (publickey)."),
            Some(SshFailure::Auth(_))
        ));
        assert!(matches!(
            c(Some(255), "Host key verification failed."),
            Some(SshFailure::HostKey(_))
        ));
        assert!(matches!(
            c(Some(127), "bash: line 1: python9: command not found"),
            Some(SshFailure::PythonMissing(_))
        ));
        assert_eq!(c(Some(1), "something else"), None);
    }
}
