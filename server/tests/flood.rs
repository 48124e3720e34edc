//! The socket server under a flood of connections that never answer: 1,000
//! new connections a second for 3 seconds, all held open in silence. A good
//! client that takes 100 ms to answer (a real network's round trip) keeps
//! getting through, and the server's log stays a few lines long.
//!
//! Bounded in count (3,000 connections, fewer if the fd limit is low) and in
//! time (about 6 s); loopback only.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use execnet_gateway::handshake::{ClientAnswer, ServerHello, Token, MAC_LEN, SERVER_HELLO_LEN};
use execnet_server::Server;

/// Every line the server logs (this test binary's only logger).
static LINES: Mutex<Vec<String>> = Mutex::new(Vec::new());

struct Collect;

impl log::Log for Collect {
    fn enabled(&self, _: &log::Metadata<'_>) -> bool {
        true
    }
    fn log(&self, record: &log::Record<'_>) {
        if record.target().starts_with("execnet_server") {
            let line = format!("{} {}", record.level(), record.args());
            LINES.lock().unwrap_or_else(|e| e.into_inner()).push(line);
        }
    }
    fn flush(&self) {}
}

fn lines() -> Vec<String> {
    LINES.lock().unwrap_or_else(|e| e.into_inner()).clone()
}

/// Raise this process's fd limit to 16,384 if it may (root may raise the
/// hard limit too), else its soft limit to its hard one; the soft limit.
fn raise_fd_limit() -> u64 {
    use rustix::process::{getrlimit, setrlimit, Resource};
    let limit = getrlimit(Resource::Nofile);
    let mut wanted = limit;
    wanted.current = Some(16_384.max(limit.current.unwrap_or(0)));
    wanted.maximum = Some(wanted.current.unwrap_or(0).max(limit.maximum.unwrap_or(0)));
    if limit.maximum.is_none() || setrlimit(Resource::Nofile, wanted).is_err() {
        let mut soft = limit;
        soft.current = soft.maximum;
        let _ = setrlimit(Resource::Nofile, soft);
    }
    getrlimit(Resource::Nofile).current.unwrap_or(u64::MAX)
}

/// One handshake of a good client that waits `delay` before answering:
/// `Ok` when the server proved it knows the token.
fn slow_handshake(addr: SocketAddr, token: &Token, delay: Duration) -> Result<(), String> {
    let mut s = TcpStream::connect(addr).map_err(|e| format!("connect: {e}"))?;
    s.set_read_timeout(Some(Duration::from_secs(10)))
        .map_err(|e| e.to_string())?;
    let mut hello = [0u8; SERVER_HELLO_LEN];
    s.read_exact(&mut hello)
        .map_err(|e| format!("hello: {e}"))?;
    let hello = ServerHello::parse(&hello).map_err(|e| e.to_string())?;
    std::thread::sleep(delay);
    let answer = ClientAnswer::new(token, &hello.nonce).map_err(|e| e.to_string())?;
    s.write_all(&answer.to_bytes())
        .map_err(|e| format!("answer: {e}"))?;
    let mut proof = [0u8; MAC_LEN];
    s.read_exact(&mut proof)
        .map_err(|e| format!("proof: {e}"))?;
    if proof != token.server_proof(&hello.nonce, &answer.nonce) {
        return Err("wrong proof".into());
    }
    Ok(())
}

#[test]
fn a_slow_good_client_gets_through_a_flood_of_silent_connections() {
    log::set_logger(&Collect).expect("the only logger");
    log::set_max_level(log::LevelFilter::Info);
    let fds = raise_fd_limit();
    // Each flood connection costs two fds here (both ends live in this
    // process); keep a margin for everything else.
    let flood: u64 = 3_000.min(fds.saturating_sub(512) / 2);
    if flood < 500 {
        // Not root, and a hard limit under ~1,500 files: no flood to speak of.
        eprintln!("skipping: the fd limit ({fds}) leaves room for {flood} connections");
        return;
    }

    let token = Token::generate().expect("token");
    // The good clients' workers: `true` exits at once, no Python needed.
    let server = Server::bind("127.0.0.1:0", Some(token.clone()))
        .expect("bind")
        .python(vec!["true".into()]);
    let addr = server.local_addr().expect("addr");
    std::thread::spawn(move || async_io::block_on(server.run()));

    // The flood: one new silent connection every millisecond.
    let flooding = Arc::new(AtomicBool::new(true));
    let flooder = {
        let flooding = flooding.clone();
        std::thread::spawn(move || {
            let start = Instant::now();
            let mut held = Vec::with_capacity(flood as usize);
            for i in 0..flood {
                let due = start + Duration::from_millis(i);
                if let Some(wait) = due.checked_duration_since(Instant::now()) {
                    std::thread::sleep(wait);
                }
                if let Ok(s) = TcpStream::connect(addr) {
                    held.push(s);
                }
            }
            flooding.store(false, Ordering::SeqCst);
            (held, start.elapsed())
        })
    };

    // Let the flood fill the server's table first.
    std::thread::sleep(Duration::from_millis(500));
    let mut outcomes = Vec::new();
    while flooding.load(Ordering::SeqCst) && outcomes.len() < 20 {
        outcomes.push(slow_handshake(addr, &token, Duration::from_millis(100)));
    }
    let (held, took) = flooder.join().expect("flooder");
    let ok = outcomes.iter().filter(|o| o.is_ok()).count();
    println!(
        "{} flood connections in {took:?} ({:.0}/s); slow good client: {ok} of {} through",
        held.len(),
        held.len() as f64 / took.as_secs_f64(),
        outcomes.len()
    );
    assert!(outcomes.len() >= 10, "too few tries during the flood");
    assert!(
        ok * 10 >= outcomes.len() * 9,
        "the slow good client got through {ok} of {} times: {:?}",
        outcomes.len(),
        outcomes
            .iter()
            .filter_map(|o| o.as_ref().err())
            .collect::<Vec<_>>()
    );

    // The flood ends: every held connection fails its handshake now. The
    // log says so in a few lines, not one per connection.
    drop(held);
    let deadline = Instant::now() + Duration::from_secs(5);
    while lines().len() < 10 && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(20));
    }
    std::thread::sleep(Duration::from_millis(500));
    let lines = lines();
    println!("{} log lines:\n{}", lines.len(), lines.join("\n"));
    assert!(
        !lines.is_empty(),
        "the failed handshakes were not logged at all"
    );
    assert!(
        lines.len() <= 12,
        "{} log lines for {flood} failed handshakes",
        lines.len()
    );
}
