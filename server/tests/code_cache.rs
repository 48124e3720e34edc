//! The compiled-worker cache cannot be poisoned. A `python=` command that
//! answers with its own "compiled worker" (here a script that plants a
//! canary in it) must not get that code run anywhere: not in later gateways
//! to the same command, not in plain `popen` gateways, not in the workers
//! of a socket server. One test in its own binary: the cache is per
//! process (and its disk cache is a fresh directory), and the liar must be
//! the first to answer for its bytecode magic.

use std::path::{Path, PathBuf};

#[path = "../../gateway/tests/support/fake_loader.rs"]
mod fake_loader;

use execnet_gateway::{Gateway, SocketTransport, Token, XSpec};
use execnet_server::Server;
use futures_lite::future::block_on;

/// A stand-in interpreter that speaks the loader's protocol, but answers a
/// request for the compiled worker with the worker plus a line that appends
/// to `canary`. It runs the honest worker itself, so its gateway works.
fn lying_interpreter(dir: &Path, canary: &Path) -> PathBuf {
    let tail = format!(
        r#"CANARY = {canary:?}
if head[4:] == b"m":
    code = marshal.loads(body)
else:
    source = body.decode()
    code = compile(source, "<execnet worker>", "exec")
    if head[4:] == b"S":
        planted = "open(%r, 'a').write('planted')\n" % CANARY + source
        data = marshal.dumps(compile(planted, "<execnet worker>", "exec"))
        data = b"EXNC" + len(data).to_bytes(4, "little") + data
        while data:
            data = data[os.write(1, data):]
exec(code, {{"__name__": "__execnet_worker__"}})
"#,
        canary = canary.display().to_string(),
    );
    fake_loader::script(dir, "lying-python", &which("python3"), &tail)
}

fn which(program: &str) -> PathBuf {
    let path = std::env::var_os("PATH").expect("PATH");
    std::env::split_paths(&path)
        .map(|d| d.join(program))
        .find(|p| p.is_file())
        .expect("python3 on PATH")
}

fn run_something(gw: &Gateway) {
    block_on(async {
        let ch = gw.remote_exec("channel.send(6 * 7)").await.expect("exec");
        assert_eq!(ch.receive::<i64>().await.expect("item"), 42);
        gw.exit().await.expect("exit");
    });
}

#[test]
fn a_lying_interpreter_plants_nothing_in_later_gateways() {
    let dir = std::env::temp_dir().join(format!("execnet-cache-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("dir");
    // An empty cache of our own, on disk too (what an earlier process
    // compiled would be served to the liar instead of asking it).
    std::env::set_var("EXECNET_CODE_CACHE", dir.join("cache"));
    let canary = dir.join("canary");
    let liar = lying_interpreter(&dir, &canary);
    let liar_spec = format!("popen//python={}", liar.display());

    // The liar first, so that it would be the one to fill the cache.
    run_something(&block_on(Gateway::open(&liar_spec)).expect("the liar's gateway"));
    assert!(
        !canary.exists(),
        "nothing planted in the liar's own gateway"
    );
    // Later gateways: the same command, plain popen (twice: the second
    // would be served from the cache), a socket server's worker.
    run_something(&block_on(Gateway::open(&liar_spec)).expect("the liar again"));
    for _ in 0..2 {
        run_something(&block_on(Gateway::open("popen")).expect("popen"));
    }
    let token = Token::generate().expect("token");
    let server = Server::bind("127.0.0.1:0", Some(token.clone())).expect("bind");
    let addr = server.local_addr().expect("addr").to_string();
    std::thread::spawn(move || async_io::block_on(server.run()));
    let spec = XSpec::parse(&format!("socket={addr}")).expect("spec");
    let transport = SocketTransport::new(addr, Some(token));
    run_something(&block_on(Gateway::from_transport(transport, spec, "served")).expect("socket"));

    let planted = std::fs::read_to_string(&canary).unwrap_or_default();
    assert_eq!(planted, "", "the liar's code ran in a later gateway");
    // Nor is it on disk for later processes.
    let canary_text = canary.display().to_string();
    for entry in std::fs::read_dir(dir.join("cache"))
        .into_iter()
        .flatten()
        .flatten()
    {
        let data = std::fs::read(entry.path()).unwrap_or_default();
        assert!(
            !data
                .windows(canary_text.len())
                .any(|w| w == canary_text.as_bytes()),
            "the liar's code is in the disk cache: {}",
            entry.path().display()
        );
    }
    let _ = std::fs::remove_dir_all(&dir);
}
