//! A worker holds none of the opener's inheritable file descriptors: they
//! are the opener's (a pipe made for a child of its own, a jobserver), and a
//! worker that kept one would keep that pipe from ending. Python execnet
//! starts its workers with `close_fds`; ours close what came through exec.
//! (One test in a binary of its own: the pipe it makes leaks into every
//! process started meanwhile.)

use std::io::{ErrorKind, Read};

use execnet_gateway::Gateway;
use futures_lite::future::block_on;

#[test]
fn the_openers_inheritable_pipe_ends_though_workers_run() {
    // Without close-on-exec, as a program makes it for a child it starts.
    let (r, w) = rustix::pipe::pipe().expect("a pipe");
    let mut gateways = Vec::new();
    // A direct worker, then the first and a later fork of a place's spawner.
    for spec in ["popen//spawn=direct", "popen", "popen"] {
        let gw = block_on(Gateway::open(spec)).expect("opens");
        let ch = block_on(gw.remote_exec("channel.send(1)")).expect("exec");
        assert_eq!(block_on(ch.receive::<i64>()).expect("item"), 1);
        gateways.push(gw);
    }
    drop(w);
    rustix::io::ioctl_fionbio(&r, true).expect("non-blocking");
    let mut reader = std::fs::File::from(r);
    let mut byte = [0u8; 1];
    match reader.read(&mut byte) {
        Ok(0) => {}
        Ok(n) => panic!("{n} bytes from a pipe nobody wrote to"),
        Err(e) if e.kind() == ErrorKind::WouldBlock => {
            panic!("the pipe did not end: a worker (or spawner) holds its write end")
        }
        Err(e) => panic!("reading the pipe: {e}"),
    }
    for gw in gateways {
        block_on(gw.exit()).expect("exit");
    }
}
