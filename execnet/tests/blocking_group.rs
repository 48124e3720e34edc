//! The blocking Group / MultiChannel / ReceiveQueue on real popen gateways.

use std::time::Duration;

use execnet::blocking::{Group, MultiChannel, ReceiveQueue};
use execnet::{Error, Value};

fn assert_send_sync<T: Send + Sync>() {}

#[test]
fn blocking_types_are_send_and_sync() {
    assert_send_sync::<Group>();
    assert_send_sync::<MultiChannel>();
    assert_send_sync::<ReceiveQueue>();
    assert_send_sync::<execnet::Group>();
    assert_send_sync::<execnet::MultiChannel>();
    assert_send_sync::<execnet::ReceiveQueue>();
}

#[test]
fn group_from_many_threads_and_queue_as_iterator() {
    let group = Group::new();
    std::thread::scope(|s| {
        let threads: Vec<_> = (0..3)
            .map(|_| s.spawn(|| group.make_gateway("popen")))
            .collect();
        for t in threads {
            t.join().expect("no panic").expect("opens");
        }
    });
    assert_eq!(group.len(), 3);
    let ids: Vec<String> = group
        .gateways()
        .iter()
        .map(|g| g.id().to_string())
        .collect();
    assert_eq!(ids, ["gw0", "gw1", "gw2"]);
    assert_eq!(
        group.get("gw1").map(|g| g.id().to_string()).as_deref(),
        Some("gw1")
    );

    let mch = group
        .remote_exec("for i in range(channel.receive()): channel.send(i)")
        .expect("exec");
    assert_eq!(mch.channels().len(), 3);
    mch.send_each(&2).expect("send");
    let mut items: Vec<(usize, Value)> = mch
        .receive_queue()
        .map(|(index, item)| (index, item.expect("no error")))
        .collect();
    items.sort_by_key(|(index, _)| *index);
    let expected: Vec<(usize, Value)> = (0..3)
        .flat_map(|index| (0..2).map(move |i| (index, Value::from(i))))
        .collect();
    assert_eq!(items, expected);
    mch.wait_close(Some(Duration::from_secs(30)))
        .expect("ended");
    group.terminate(Some(Duration::from_secs(2)));
    assert!(group.is_empty());
}

#[test]
fn recv_timeout_then_closed() {
    let group = Group::new();
    group.make_gateway("popen").expect("opens");
    let mch = group
        .remote_exec("channel.send(channel.receive())")
        .expect("exec");
    let mut queue = mch.receive_queue();
    let waited = queue.recv_timeout(Duration::from_millis(100));
    assert!(matches!(waited, Err(Error::Timeout(_))), "{waited:?}");
    mch.channels()[0].send("x").expect("send");
    let (index, item) = queue.recv_timeout(Duration::from_secs(30)).expect("item");
    assert_eq!((index, item.expect("ok")), (0, Value::from("x")));
    assert!(matches!(
        queue.recv_timeout(Duration::from_secs(30)),
        Err(Error::Closed)
    ));
    assert!(queue.next().is_none());
}
