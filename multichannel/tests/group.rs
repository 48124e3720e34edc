//! Groups on real popen gateways: ids, order, membership, concurrent opening
//! (after execnet's testing/test_multi.py, TestGroup).

use std::collections::HashSet;

use execnet_gateway::{Error, Step};
use execnet_multichannel::Group;
use futures_lite::future::block_on;

fn ids(group: &Group) -> Vec<String> {
    group
        .gateways()
        .iter()
        .map(|gw| gw.id().to_string())
        .collect()
}

#[test]
fn ids_are_counted_per_group() {
    block_on(async {
        let one = Group::new();
        let two = Group::new();
        let a = one.make_gateway("popen").await.expect("opens");
        let b = one.make_gateway("popen").await.expect("opens");
        let c = two.make_gateway("popen").await.expect("opens");
        assert_eq!((a.id(), b.id(), c.id()), ("gw0", "gw1", "gw0"));
        // The id is written into the gateway's spec too, as execnet does.
        assert_eq!(a.spec().id(), Some("gw0"));
        one.terminate(None).await;
        two.terminate(None).await;
    });
}

#[test]
fn explicit_id_then_automatic_ids() {
    block_on(async {
        let group = Group::new();
        let hello = group.make_gateway("popen//id=hello").await.expect("opens");
        assert_eq!(hello.id(), "hello");
        let auto = group.make_gateway("popen").await.expect("opens");
        assert_eq!(auto.id(), "gw0");
        // An explicit gwN is skipped by the automatic ids.
        let taken = group.make_gateway("popen//id=gw1").await.expect("opens");
        assert_eq!(taken.id(), "gw1");
        let next = group.make_gateway("popen").await.expect("opens");
        assert_eq!(next.id(), "gw2");
        group.terminate(None).await;
    });
}

#[test]
fn duplicate_id_is_an_error() {
    block_on(async {
        let group = Group::new();
        let first = group.make_gateway("popen//id=a").await.expect("opens");
        let err = group
            .make_gateway("popen//id=a")
            .await
            .expect_err("the id is taken");
        match &err {
            Error::DuplicateId(id) => assert_eq!(id, "a"),
            other => panic!("unexpected error {other:?}"),
        }
        assert!(err.to_string().contains("\"a\""), "{err}");
        assert_eq!(group.len(), 1);
        assert!(group.get("a").is_some_and(|gw| gw.same(&first)));
        group.terminate(None).await;
    });
}

#[test]
fn duplicate_id_while_the_first_is_still_opening() {
    block_on(async {
        let group = Group::new();
        let (a, b) = futures_lite::future::zip(
            group.make_gateway("popen//id=same"),
            group.make_gateway("popen//id=same"),
        )
        .await;
        assert!(a.is_ok() != b.is_ok(), "exactly one opens: {a:?} {b:?}");
        assert_eq!(ids(&group), ["same"]);
        group.terminate(None).await;
    });
}

#[test]
fn get_and_gateways_keep_creation_order() {
    block_on(async {
        let group = Group::new();
        for id in ["3", "2", "5"] {
            group
                .make_gateway(&format!("popen//id={id}"))
                .await
                .expect("opens");
        }
        assert_eq!(ids(&group), ["3", "2", "5"]);
        assert_eq!(group.len(), 3);
        let two = group.get("2").expect("member 2");
        assert_eq!(two.id(), "2");
        assert!(group.get("4").is_none());
        assert_eq!(
            format!("{group:?}"),
            r#"Group { gateways: ["3", "2", "5"], opening: [] }"#
        );
        group.terminate(None).await;
        assert!(group.is_empty());
        assert!(group.gateways().is_empty());
        assert!(group.get("2").is_none());
        assert_eq!(format!("{group:?}"), "Group { gateways: [], opening: [] }");
    });
}

#[test]
fn three_gateways_open_concurrently() {
    block_on(async {
        let group = Group::new();
        let (a, (b, c)) = futures_lite::future::zip(
            group.make_gateway("popen"),
            futures_lite::future::zip(group.make_gateway("popen"), group.make_gateway("popen")),
        )
        .await;
        let (a, b, c) = (a.expect("a"), b.expect("b"), c.expect("c"));
        // Creation order is call order, whichever finished opening first.
        assert_eq!(ids(&group), ["gw0", "gw1", "gw2"]);
        assert_eq!((a.id(), b.id(), c.id()), ("gw0", "gw1", "gw2"));
        let pids: HashSet<Option<u32>> = [a.pid(), b.pid(), c.pid()].into_iter().collect();
        assert_eq!(pids.len(), 3);
        let mch = group
            .remote_exec("import os; channel.send(os.getpid())")
            .await
            .expect("exec");
        let remote: Vec<u32> = mch.receive_each().await.expect("pids");
        assert_eq!(
            remote,
            [a.pid().unwrap(), b.pid().unwrap(), c.pid().unwrap()]
        );
        group.terminate(None).await;
    });
}

#[test]
fn blocking_threads_open_concurrently_through_a_shared_group() {
    let group = Group::new();
    std::thread::scope(|s| {
        let threads: Vec<_> = (0..3)
            .map(|_| {
                s.spawn(|| block_on(group.make_gateway("popen")).map(|gw| gw.id().to_string()))
            })
            .collect();
        let mut opened: Vec<String> = threads
            .into_iter()
            .map(|t| t.join().expect("no panic").expect("opens"))
            .collect();
        opened.sort();
        assert_eq!(opened, ["gw0", "gw1", "gw2"]);
    });
    assert_eq!(group.len(), 3);
    block_on(group.terminate(None));
}

#[test]
fn exited_gateway_leaves_the_group() {
    block_on(async {
        let group = Group::new();
        let gw = group.make_gateway("popen//id=hello").await.expect("opens");
        let other = group.make_gateway("popen").await.expect("opens");
        assert_eq!(group.len(), 2);
        gw.exit().await.expect("exit");
        assert!(group.get("hello").is_none());
        assert_eq!(ids(&group), ["gw0"]);
        // Its id is free again.
        let again = group
            .make_gateway("popen//id=hello")
            .await
            .expect("reopens");
        assert_eq!(ids(&group), ["gw0", "hello"]);
        assert!(!again.same(&gw) && !again.same(&other));
        group.terminate(None).await;
    });
}

#[test]
fn dead_worker_leaves_the_group() {
    block_on(async {
        let group = Group::new();
        let gw = group.make_gateway("popen").await.expect("opens");
        group.make_gateway("popen").await.expect("opens");
        let ch = gw
            .remote_exec("import os; os._exit(3)")
            .await
            .expect("exec");
        let end = ch.wait_close(None).await;
        assert!(matches!(end, Err(Error::ConnectionLost(_))), "{end:?}");
        assert!(gw.is_closed());
        assert_eq!(ids(&group), ["gw1"]);
        group.terminate(None).await;
    });
}

#[test]
fn failed_open_frees_its_id_and_names_the_step() {
    block_on(async {
        let group = Group::new();
        let err = group
            .make_gateway("popen//python=/nonexistent/python3//id=x")
            .await
            .expect_err("no such interpreter");
        match &err {
            Error::Bootstrap { gateway, step, .. } => {
                assert_eq!(gateway, "x");
                assert_eq!(*step, Step::Spawn, "{err}");
            }
            other => panic!("unexpected error {other:?}"),
        }
        assert!(group.is_empty());
        let gw = group.make_gateway("popen//id=x").await.expect("opens now");
        assert_eq!(gw.id(), "x");
        group.terminate(None).await;
    });
}

#[test]
fn bad_spec_is_an_error() {
    block_on(async {
        let group = Group::new();
        let err = group
            .make_gateway("popen//nice=abc")
            .await
            .expect_err("bad spec");
        assert!(matches!(err, Error::Spec(_)), "{err:?}");
        assert!(group.is_empty());
    });
}

#[test]
fn via_names_a_member_of_the_group() {
    block_on(async {
        let group = Group::new();
        let err = group
            .make_gateway("popen//via=nobody")
            .await
            .expect_err("no member nobody");
        match &err {
            Error::Bootstrap { step, message, .. } => {
                assert_eq!(*step, Step::Route);
                assert!(message.contains("nobody"), "{err}");
            }
            other => panic!("unexpected error {other:?}"),
        }
        // Routing through a member is not there yet; it must not quietly
        // open a local gateway instead.
        group.make_gateway("popen//id=master").await.expect("opens");
        let routed = group.make_gateway("popen//via=master//id=worker").await;
        if let Err(e) = &routed {
            assert!(
                matches!(
                    e,
                    Error::Bootstrap {
                        step: Step::Route,
                        ..
                    }
                ),
                "{e:?}"
            );
            assert_eq!(ids(&group), ["master"]);
        }
        group.terminate(None).await;
    });
}

#[test]
fn remote_exec_over_the_group() {
    block_on(async {
        let group = Group::new();
        assert!(group
            .remote_exec("channel.send(1)")
            .await
            .expect("no members")
            .is_empty());
        group.make_gateway("popen").await.expect("opens");
        group.make_gateway("popen").await.expect("opens");
        let mch = group
            .remote_exec("channel.send(channel.receive() + 1)")
            .await
            .expect("exec");
        assert_eq!(mch.len(), 2);
        mch.send_each(&41).await.expect("send");
        assert_eq!(mch.receive_each::<i64>().await.expect("items"), [42, 42]);
        let gateways: Vec<String> = mch
            .channels()
            .iter()
            .map(|ch| ch.gateway().id().to_string())
            .collect();
        assert_eq!(gateways, ["gw0", "gw1"]);
        group.terminate(None).await;
    });
}
