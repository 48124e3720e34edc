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

/// A file with `text`, mode 600 from the start.
fn private_file(path: &std::path::Path, text: &str) -> PathBuf {
    use std::os::unix::fs::OpenOptionsExt;
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)
        .expect("create");
    file.write_all(text.as_bytes()).expect("write");
    path.to_path_buf()
}

/// `execnet serve ARGS` that is expected to stop at once: its exit status
/// and stderr.
fn serve_fails(args: &[&str], env: &[(&str, &str)]) -> (std::process::ExitStatus, String) {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_execnet"));
    cmd.arg("serve").args(args).env_remove("EXECNET_TOKEN");
    for (k, v) in env {
        cmd.env(k, v);
    }
    let out = cmd.output().expect("runs");
    assert!(out.stdout.is_empty(), "it listened: {:?}", out.stdout);
    (
        out.status,
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
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
    let wrong = private_file(&served.dir.join("wrong"), &"0".repeat(64));
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

#[test]
fn loose_weak_or_foreign_tokens_are_refused_with_the_fix() {
    let dir = std::env::temp_dir().join(format!("execnet-serve-{}-tokens", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("temp dir");
    let strong = "0123456789abcdef".repeat(4);

    // Readable or writable by group or others: refused, with the fix.
    let loose = private_file(&dir.join("loose"), &strong);
    for mode in [0o640, 0o604, 0o620, 0o602, 0o644] {
        std::fs::set_permissions(&loose, std::fs::Permissions::from_mode(mode)).expect("chmod");
        let path = loose.display().to_string();
        let (status, stderr) =
            serve_fails(&["--listen", "127.0.0.1:0", "--token-file", &path], &[]);
        assert!(!status.success());
        assert!(
            stderr.contains(&format!("chmod 600 {path}")),
            "{mode:o}: {stderr}"
        );
        // The client refuses it too, before connecting anywhere.
        match Gateway::open(&format!("socket=127.0.0.1:9//token_file={path}")) {
            Err(Error::Bootstrap {
                step: Step::Connect,
                message,
                ..
            }) => assert!(message.contains(&format!("chmod 600 {path}")), "{message}"),
            other => panic!("a loose token file was used: {other:?}"),
        }
    }

    // Owned by another user (a root server, a file nobody may rewrite).
    if is_root() {
        let foreign = private_file(&dir.join("foreign"), &strong);
        std::os::unix::fs::chown(&foreign, Some(65534), None).expect("chown");
        let path = foreign.display().to_string();
        let (status, stderr) =
            serve_fails(&["--listen", "127.0.0.1:0", "--token-file", &path], &[]);
        assert!(!status.success());
        assert!(stderr.contains("belongs to user id 65534"), "{stderr}");
    }

    // Under 128 bits: the help text's old example, and 31 hex digits.
    let (status, stderr) =
        serve_fails(&["--listen", "127.0.0.1:0"], &[("EXECNET_TOKEN", "secret")]);
    assert!(!status.success());
    assert!(stderr.contains("at least 128"), "{stderr}");
    let short = private_file(&dir.join("short"), &strong[..31]);
    let path = short.display().to_string();
    let (_, stderr) = serve_fails(&["--listen", "127.0.0.1:0", "--token-file", &path], &[]);
    assert!(stderr.contains("about 124 bits"), "{stderr}");
    let _ = std::fs::remove_dir_all(&dir);
}

/// Whether this process runs as root (and so may give a file away).
fn is_root() -> bool {
    use std::os::unix::fs::MetadataExt;
    std::fs::metadata("/proc/self").is_ok_and(|m| m.uid() == 0)
}

#[test]
fn a_fresh_token_is_created_and_said_and_a_public_address_is_warned() {
    let dir = std::env::temp_dir().join(format!("execnet-serve-{}-fresh", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("temp dir");
    let token = dir.join("token");
    // 0.0.0.0: listening beyond loopback (nothing connects to it).
    let mut child = Command::new(env!("CARGO_BIN_EXE_execnet"))
        .args(["serve", "--listen", "0.0.0.0:0", "--token-file"])
        .arg(&token)
        .env_remove("EXECNET_TOKEN")
        .env_remove("EXECNET_LOG")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("execnet serve starts");
    let mut line = String::new();
    BufReader::new(child.stdout.take().expect("stdout"))
        .read_line(&mut line)
        .expect("first line");
    assert!(line.starts_with("listening on 0.0.0.0:"), "{line}");
    let _ = child.kill();
    let _ = child.wait();
    let mut stderr = String::new();
    child
        .stderr
        .take()
        .expect("stderr")
        .read_to_string(&mut stderr)
        .expect("stderr");
    assert!(
        stderr.contains(&format!("created the token file {}", token.display())),
        "{stderr}"
    );
    assert!(stderr.contains("256-bit"), "{stderr}");
    assert!(stderr.contains("not a loopback address"), "{stderr}");
    let text = std::fs::read_to_string(&token).expect("token");
    assert_eq!(text.trim().len(), 64, "{text:?}");
    assert!(text.trim().bytes().all(|b| b.is_ascii_hexdigit()));
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn a_client_with_a_token_refuses_a_server_without_auth_unless_it_opts_in() {
    // The impostor: a server that asks for no token.
    let dir = std::env::temp_dir().join(format!("execnet-serve-{}-impostor", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("temp dir");
    let mut child = Command::new(env!("CARGO_BIN_EXE_execnet"))
        .args(["serve", "--listen", "127.0.0.1:0", "--insecure-no-auth"])
        .env_remove("EXECNET_TOKEN")
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("execnet serve starts");
    let mut line = String::new();
    BufReader::new(child.stdout.take().expect("stdout"))
        .read_line(&mut line)
        .expect("first line");
    let addr = line
        .trim()
        .strip_prefix("listening on ")
        .expect("address")
        .to_string();
    let served = Served { child, addr, dir };
    let token = private_file(&served.dir.join("token"), &"0123456789abcdef".repeat(4));
    let canary = served.dir.join("canary");
    let code = format!("open({:?}, 'w').write('ran')", canary.display().to_string());

    // With a token, and without one: refused before anything is sent.
    for spec in [
        format!("socket={}//token_file={}", served.addr, token.display()),
        format!("socket={}", served.addr),
    ] {
        if spec.ends_with(&served.addr) && std::env::var_os("EXECNET_TOKEN").is_some() {
            continue;
        }
        let message = auth_error(Gateway::open(&spec));
        assert!(message.contains("requires no token"), "{message}");
        assert!(message.contains("insecure_no_auth"), "{message}");
    }
    assert!(!canary.exists(), "the impostor ran our code");

    // The explicit opt-in: the spec key, or the option.
    let spec = format!("socket={}//insecure_no_auth", served.addr);
    let gw = Gateway::open(&spec).expect("opted in");
    gw.remote_exec(&code)
        .expect("exec")
        .wait_close(None)
        .expect("ran");
    gw.exit().expect("exit");
    assert!(canary.exists());
    let spec = execnet::XSpec::parse(&format!("socket={}", served.addr)).expect("spec");
    let options = execnet::Options::default().insecure_no_auth(true);
    let gw = Gateway::open_with(spec, options).expect("opted in by option");
    gw.exit().expect("exit");
}
