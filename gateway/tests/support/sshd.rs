//! A private sshd for tests: `/usr/sbin/sshd -D -f OWN_CONFIG` on a free
//! 127.0.0.1 port, with its own host key, user key, authorized_keys and
//! known_hosts in a temp dir. No global config is touched (except that the
//! privilege separation directory `/run/sshd`, which Debian's sshd requires
//! when run as root, is created if missing). Killed and reaped on drop.

#![allow(dead_code)]

use std::net::{Ipv4Addr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

const SSHD: &str = "/usr/sbin/sshd";

/// A running test sshd.
#[derive(Debug)]
pub struct Sshd {
    pub dir: PathBuf,
    pub port: u16,
    child: Child,
}

/// A free loopback port (nobody listens on it once this returns).
pub fn free_port() -> u16 {
    let l = TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).expect("bind a free port");
    l.local_addr().expect("local addr").port()
}

fn keygen(path: &Path) {
    let status = Command::new("ssh-keygen")
        .args(["-q", "-t", "ed25519", "-N", "", "-C", "execnet-test", "-f"])
        .arg(path)
        .status()
        .expect("ssh-keygen runs");
    assert!(status.success(), "ssh-keygen failed");
}

impl Sshd {
    /// Start one, or `None` (with the reason printed) when sshd is not
    /// installed and `EXECNET_REQUIRE_SSHD=1` is not set.
    pub fn start(test: &str) -> Option<Sshd> {
        Self::start_with(test, "MaxSessions 64\nMaxStartups 64\n")
    }

    /// Start one with sshd's stock session limits (MaxSessions 10,
    /// MaxStartups 10:30:100).
    pub fn start_stock(test: &str) -> Option<Sshd> {
        Self::start_with(test, "")
    }

    fn start_with(test: &str, limits: &str) -> Option<Sshd> {
        if !Path::new(SSHD).exists() {
            assert!(
                std::env::var("EXECNET_REQUIRE_SSHD").as_deref() != Ok("1"),
                "EXECNET_REQUIRE_SSHD=1 but {SSHD} is missing (apt-get install openssh-server)"
            );
            eprintln!("skipping {test}: {SSHD} is not installed (apt-get install openssh-server)");
            return None;
        }
        let dir = std::env::temp_dir().join(format!(
            "execnet-sshd-{}-{test}-{}",
            std::process::id(),
            free_port()
        ));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).expect("temp dir");
        keygen(&dir.join("host_key"));
        keygen(&dir.join("user_key"));
        keygen(&dir.join("other_key"));
        std::fs::copy(dir.join("user_key.pub"), dir.join("authorized_keys"))
            .expect("authorized_keys");
        if rustix_is_root() {
            let _ = std::fs::create_dir_all("/run/sshd");
        }
        let port = free_port();
        let host_pub = std::fs::read_to_string(dir.join("host_key.pub")).expect("host key");
        std::fs::write(
            dir.join("known_hosts"),
            format!("[127.0.0.1]:{port} {host_pub}"),
        )
        .expect("known_hosts");
        std::fs::write(dir.join("ssh_config"), "").expect("ssh_config");
        let config = format!(
            "Port {port}\nListenAddress 127.0.0.1\nHostKey {d}/host_key\nPidFile none\n\
             AuthorizedKeysFile {d}/authorized_keys\nStrictModes no\nPubkeyAuthentication yes\n\
             PasswordAuthentication no\nKbdInteractiveAuthentication no\nUsePAM no\n\
             PermitRootLogin prohibit-password\n{limits}LogLevel ERROR\n",
            d = dir.display()
        );
        let config_path = dir.join("sshd_config");
        std::fs::write(&config_path, config).expect("sshd_config");
        let child = Command::new(SSHD)
            .args(["-D", "-e", "-f"])
            .arg(&config_path)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(dir.join("sshd.log")).expect("log file"))
            .spawn()
            .expect("sshd starts");
        let mut sshd = Sshd { dir, port, child };
        let deadline = Instant::now() + Duration::from_secs(10);
        while TcpStream::connect((Ipv4Addr::LOCALHOST, port)).is_err() {
            if let Ok(Some(status)) = sshd.child.try_wait() {
                panic!("sshd exited ({status}): {}", sshd.log());
            }
            assert!(
                Instant::now() < deadline,
                "sshd did not listen: {}",
                sshd.log()
            );
            std::thread::sleep(Duration::from_millis(10));
        }
        Some(sshd)
    }

    /// The sshd log so far.
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.join("sshd.log")).unwrap_or_default()
    }

    /// The `ssh=` value for this server with `key` (a file name in the dir).
    pub fn ssh_args_with(&self, key: &str) -> String {
        format!(
            "-p {} -i {d}/{key} -o IdentitiesOnly=yes -o IdentityAgent=none \
             -o UserKnownHostsFile={d}/known_hosts -o StrictHostKeyChecking=yes root@127.0.0.1",
            self.port,
            d = self.dir.display()
        )
    }

    /// A spec for this server with the authorized key, plus `extra` (`//...`).
    pub fn spec(&self, extra: &str) -> String {
        format!(
            "ssh={}//ssh_config={}/ssh_config{extra}",
            self.ssh_args_with("user_key"),
            self.dir.display()
        )
    }

    /// Established TCP connections to this sshd (client side), from /proc/net/tcp.
    pub fn client_connections(&self) -> usize {
        let table = std::fs::read_to_string("/proc/net/tcp").unwrap_or_default();
        let want = format!(":{:04X}", self.port);
        table
            .lines()
            .skip(1)
            .filter(|line| {
                let cols: Vec<&str> = line.split_whitespace().collect();
                cols.len() > 3 && cols[2].ends_with(&want) && cols[3] == "01"
            })
            .count()
    }
}

fn rustix_is_root() -> bool {
    // Root's home or uid 0 as reported by `id -u`, without extra deps.
    Command::new("id")
        .arg("-u")
        .output()
        .is_ok_and(|o| o.stdout.trim_ascii() == b"0")
}

impl Drop for Sshd {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}
