//! The socket server under abuse: 200 connections at once that stay silent,
//! send garbage, or fail the challenge. It runs nothing for any of them and
//! stays responsive for a good client.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

use execnet_gateway::{Gateway, Token};
use execnet_server::Server;
use futures_lite::future::block_on;

#[path = "../../gateway/tests/support/procs.rs"]
mod procs;
use procs::children;

#[test]
fn two_hundred_bad_connections_run_nothing_and_a_good_client_gets_through() {
    let dir = std::env::temp_dir().join(format!("execnet-abuse-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("dir");
    let token_file = dir.join("token");
    let token = Token::load_or_create(&token_file).expect("token");
    let server = Server::bind("127.0.0.1:0", Some(token)).expect("bind");
    let addr = server.local_addr().expect("addr");
    std::thread::spawn(move || async_io::block_on(server.run()));

    let mut held = Vec::new();
    for i in 0..200 {
        let Ok(mut s) = TcpStream::connect(addr) else {
            continue;
        };
        let _ = s.set_read_timeout(Some(Duration::from_secs(5)));
        match i % 3 {
            0 => {} // silent
            1 => {
                let _ = s.write_all(&[0xAB; 300]);
            }
            _ => {
                // A well-formed answer with a MAC made without the token.
                let mut hello = [0u8; 38];
                if s.read_exact(&mut hello).is_ok() {
                    let mut answer = b"EXNC\x01".to_vec();
                    answer.extend_from_slice(&[7u8; 64]);
                    let _ = s.write_all(&answer);
                }
            }
        }
        held.push(s);
    }
    // A good client gets a working gateway despite the bad ones: a new
    // connection evicts the oldest pending handshake, so silent clients
    // holding every slot cannot keep it out.
    let spec = format!("socket={addr}//token_file={}", token_file.display());
    let start = Instant::now();
    let gw = loop {
        match block_on(Gateway::open(&spec)) {
            Ok(gw) => break gw,
            Err(e) => assert!(
                start.elapsed() < Duration::from_secs(5),
                "the good client never got through: {e}"
            ),
        }
        std::thread::sleep(Duration::from_millis(100));
    };
    println!("good client through after {:?}", start.elapsed());
    let ch = block_on(gw.remote_exec("channel.send(6 * 7)")).expect("exec");
    assert_eq!(block_on(ch.receive::<i32>()).expect("item"), 42);
    // Exactly one worker runs: the good client's.
    assert_eq!(children().len(), 1, "children: {:?}", children());
    block_on(gw.exit()).expect("exit");
    drop(held);
    let deadline = Instant::now() + Duration::from_secs(10);
    while !children().is_empty() && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(20));
    }
    assert!(children().is_empty(), "left: {:?}", children());
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn a_client_dropped_by_a_full_server_is_told_so_not_wrong_token() {
    use execnet_gateway::handshake::{client_handshake, AuthError, ClientPolicy, SERVER_HELLO_LEN};
    use futures_lite::AsyncReadExt;

    let token = Token::generate().expect("token");
    // Room for one pending handshake: the next connection evicts it.
    let server = Server::bind("127.0.0.1:0", Some(token.clone()))
        .expect("bind")
        .max_pending(1)
        .python(vec!["true".into()]);
    let addr = server.local_addr().expect("addr");
    std::thread::spawn(move || async_io::block_on(server.run()));

    // Our client has the server's hello and is about to answer...
    let mut ours = TcpStream::connect(addr).expect("connect");
    let mut hello = [0u8; SERVER_HELLO_LEN];
    ours.read_exact(&mut hello).expect("hello");
    // ...when another connection takes its place.
    let mut other = TcpStream::connect(addr).expect("connect");
    let mut other_hello = [0u8; SERVER_HELLO_LEN];
    other
        .read_exact(&mut other_hello)
        .expect("the newcomer's hello");
    ours.set_read_timeout(Some(Duration::from_secs(5)))
        .expect("timeout");
    let mut peek = [0u8; 1];
    // The server has closed ours: EOF (or a reset).
    assert!(matches!(ours.peek(&mut peek), Ok(0) | Err(_)));

    // The client's half, given the hello it already read.
    let stream = async_io::Async::new(ours).expect("async");
    let result = block_on(async {
        let mut reader = AsyncReadExt::chain(&hello[..], &stream);
        client_handshake(&mut reader, &mut &stream, &ClientPolicy::new(Some(token))).await
    });
    match result {
        Err(AuthError::Closed(message)) => {
            assert!(message.contains("overloaded?"), "{message}");
            assert!(!message.contains("wrong token"), "{message}");
        }
        other => panic!("expected a dropped handshake, got {other:?}"),
    }
}
