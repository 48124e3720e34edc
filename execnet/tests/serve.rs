//! `execnet serve` and `socket=` gateways: authentication, bad clients, and
//! the server staying up.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::os::unix::fs::PermissionsExt;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use execnet::blocking::Gateway;
use execnet::{Error, Step};

struct Served {
    child: Child,
    addr: String,
    dir: PathBuf,
}

impl Drop for Served {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

fn serve(name: &str) -> Served {
    let dir = std::env::temp_dir().join(format!("execnet-serve-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("temp dir");
    let mut child = Command::new(env!("CARGO_BIN_EXE_execnet"))
        .args(["serve", "--listen", "127.0.0.1:0", "--token-file"])
        .arg(dir.join("token"))
        .env_remove("EXECNET_TOKEN")
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("execnet serve starts");
    let mut line = String::new();
    let stdout = child.stdout.take().expect("stdout");
    BufReader::new(stdout)
        .read_line(&mut line)
        .expect("first line");
    let addr = line
        .trim()
        .strip_prefix("listening on ")
        .unwrap_or_else(|| panic!("first line is {line:?}"))
        .to_string();
    Served { child, addr, dir }
}

fn auth_error(result: execnet::Result<Gateway>) -> String {
    match result {
        Err(Error::Bootstrap {
            step: Step::Auth,
            message,
            ..
        }) => message,
        Err(other) => panic!("expected an authentication error, got {other}"),
        Ok(_) => panic!("opened without the right token"),
    }
}

#[test]
fn token_gateway_runs_and_bad_clients_are_dropped() {
    let served = serve("main");
    let token = served.dir.join("token");
    let mode = std::fs::metadata(&token)
        .expect("token file")
        .permissions()
        .mode();
    assert_eq!(mode & 0o777, 0o600, "token file is private");

    // A client that never speaks, one that sends garbage: dropped, nothing run.
    let _silent = TcpStream::connect(&served.addr).expect("connect");
    let mut garbage = TcpStream::connect(&served.addr).expect("connect");
    garbage.write_all(&[0x42; 69]).expect("write");
    garbage
        .set_read_timeout(Some(Duration::from_secs(20)))
        .expect("timeout");
    let mut rest = Vec::new();
    let _ = garbage.read_to_end(&mut rest);
    assert_eq!(
        rest.len(),
        38,
        "only the server's hello came back, then EOF"
    );

    // Wrong token: authentication failed, and the server is still up.
    let wrong = served.dir.join("wrong");
    std::fs::write(&wrong, "not the token").expect("write");
    let message = auth_error(Gateway::open(&format!(
        "socket={}//token_file={}",
        served.addr,
        wrong.display()
    )));
    assert!(message.contains("authentication failed"), "{message}");

    let gw = Gateway::open(&format!(
        "socket={}//token_file={}",
        served.addr,
        token.display()
    ))
    .expect("the right token opens");
    let ch = gw
        .remote_exec("channel.send(channel.receive() + 1)")
        .expect("exec");
    ch.send(&41).expect("send");
    assert_eq!(ch.receive::<i64>().expect("receive"), 42);
    let info = gw.rinfo().expect("rinfo");
    assert_ne!(Some(info.pid), gw.pid());
    gw.exit().expect("exit");

    // A second session on the same server.
    let gw = Gateway::open(&format!(
        "socket={}//token_file={}",
        served.addr,
        token.display()
    ))
    .expect("again");
    gw.exit().expect("exit");
}

#[test]
fn socket_gateways_are_forks_of_one_spawner_on_one_connection() {
    let served = serve("spawn");
    let spec = format!(
        "socket={}//token_file={}",
        served.addr,
        served.dir.join("token").display()
    );
    let gateways: Vec<Gateway> = (0..3)
        .map(|_| Gateway::open(&spec).expect("opens"))
        .collect();
    let ids: Vec<(u32, u32)> = gateways
        .iter()
        .map(|gw| {
            let ch = gw
                .remote_exec("import os; channel.send((os.getpid(), os.getppid()))")
                .expect("exec");
            ch.receive().expect("ids")
        })
        .collect();
    assert!(ids.iter().all(|&(_, ppid)| ppid == ids[0].1), "{ids:?}");
    let mut pids: Vec<u32> = ids.iter().map(|&(pid, _)| pid).collect();
    pids.sort_unstable();
    pids.dedup();
    assert_eq!(pids.len(), 3, "three workers");
    // One connection to the server carries all three.
    let port = served.addr.rsplit(':').next().expect("port");
    let want = format!(":{:04X}", port.parse::<u16>().expect("port number"));
    let tcp = std::fs::read_to_string("/proc/net/tcp").unwrap_or_default();
    let connections = tcp
        .lines()
        .skip(1)
        .filter(|l| {
            let cols: Vec<&str> = l.split_whitespace().collect();
            cols.len() > 3 && cols[2].ends_with(&want) && cols[3] == "01"
        })
        .count();
    assert_eq!(connections, 1, "one connection to the server");
    for gw in gateways {
        gw.exit().expect("exit");
    }
}

#[test]
fn missing_token_is_an_authentication_error() {
    if std::env::var_os("EXECNET_TOKEN").is_some() {
        eprintln!("skipping: EXECNET_TOKEN is set in this environment");
        return;
    }
    let served = serve("missing");
    let message = auth_error(Gateway::open(&format!("socket={}", served.addr)));
    assert!(message.contains("authentication failed"), "{message}");
    assert!(message.contains("token_file="), "{message}");
}

#[test]
fn refuses_to_start_without_a_token() {
    let out = Command::new(env!("CARGO_BIN_EXE_execnet"))
        .args(["serve", "--listen", "127.0.0.1:0"])
        .env_remove("EXECNET_TOKEN")
        .output()
        .expect("runs");
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("--insecure-no-auth"), "{stderr}");
    assert!(out.stdout.is_empty());
}

#[test]
fn dead_port_is_a_connect_error() {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("free port")
        .port();
    match Gateway::open(&format!("socket=127.0.0.1:{port}")) {
        Err(Error::Bootstrap {
            step: Step::Connect,
            message,
            ..
        }) => {
            assert!(message.contains(&format!("127.0.0.1:{port}")), "{message}")
        }
        other => panic!("expected a connect error, got {other:?}"),
    }
}
