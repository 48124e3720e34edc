//! A spec with a key the engine does not act on never opens a gateway: a
//! typo must not run code somewhere the user did not mean.

mod support;

use execnet_gateway::{Error, Gateway};
use execnet_xspec::ParseError;
use futures_lite::future::block_on;
use support::procs::children;

#[test]
fn mistyped_keys_are_errors_and_start_nothing_but_x_keys_pass() {
    let before = children();
    for (spec, key, known) in [
        ("popn", "popn", Some("popen")),
        ("shh=build-host", "shh", Some("ssh")),
        ("sockte=127.0.0.1:1", "sockte", Some("socket")),
        ("popen//chdri=x", "chdri", Some("chdir")),
        ("popen//colour=blue", "colour", None),
    ] {
        match block_on(Gateway::open(spec)) {
            Err(Error::Spec(ParseError::UnknownKey {
                key: found,
                suggestion,
                ..
            })) => {
                assert_eq!(found, key, "{spec}");
                assert_eq!(suggestion, known, "{spec}");
            }
            other => panic!("{spec}: expected an unknown-key error, got {other:?}"),
        }
    }
    assert_eq!(children(), before, "no process was started");

    // Keys of the program's own pass with the prefix. (One test: the child
    // count above must not see a gateway another test opens meanwhile.)
    block_on(async {
        let gw = Gateway::open("popen//x-owner=ci-42").await.expect("opens");
        assert_eq!(gw.spec().get("x-owner"), Some("ci-42"));
        let ch = gw.remote_exec("channel.send(1)").await.expect("exec");
        assert_eq!(ch.receive::<i64>().await.expect("item"), 1);
        gw.exit().await.expect("exit");
    });
}
