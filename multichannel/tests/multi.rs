//! MultiChannel and its receive queue on real popen gateways (after
//! execnet's testing/test_multi.py, TestMultiChannelAndGateway).

use std::time::Duration;

use execnet_gateway::{Error, Gateway, Value};
use execnet_multichannel::{Group, MultiChannel};
use futures_lite::future::block_on;
use futures_lite::StreamExt;

fn int(value: &Value) -> i64 {
    value.as_int().and_then(|n| n.to_i64()).expect("an int")
}

fn group_of(n: usize) -> Group {
    let group = Group::new();
    for _ in 0..n {
        block_on(group.make_gateway("popen")).expect("opens");
    }
    group
}

#[test]
fn container_basics() {
    block_on(async {
        let gw = Gateway::open("popen").await.expect("opens");
        let channels: Vec<_> = (0..3).map(|_| gw.new_channel()).collect();
        let mch = MultiChannel::new(channels.clone());
        assert_eq!(mch.len(), 3);
        assert!(!mch.is_empty());
        assert_eq!(mch.channels(), &channels[..]);
        let ids: Vec<u32> = (&mch).into_iter().map(|ch| ch.id()).collect();
        assert_eq!(ids, channels.iter().map(|ch| ch.id()).collect::<Vec<_>>());
        assert!(mch.channels().contains(&channels[1]));
        assert!(MultiChannel::default().is_empty());
        gw.exit().await.expect("exit");
    });
}

#[test]
fn send_each_then_receive_each_in_channel_order() {
    let group = group_of(3);
    block_on(async {
        let mch = group
            .remote_exec("import os; channel.send((channel.receive(), os.getpid()))")
            .await
            .expect("exec");
        // The last channel is asked (and answers) first.
        for (i, ch) in mch.channels().iter().enumerate().rev() {
            ch.send(&i).await.expect("send");
        }
        let items: Vec<(usize, u32)> = mch.receive_each().await.expect("items");
        let expected: Vec<(usize, u32)> = group
            .gateways()
            .iter()
            .enumerate()
            .map(|(i, gw)| (i, gw.pid().expect("pid")))
            .collect();
        assert_eq!(items, expected);

        let mch = group
            .remote_exec("channel.send(channel.receive() * 2)")
            .await
            .expect("exec");
        mch.send_each(&21).await.expect("send_each");
        assert_eq!(
            mch.receive_each::<i64>().await.expect("items"),
            [42, 42, 42]
        );
        mch.wait_close(Some(Duration::from_secs(30)))
            .await
            .expect("all end");
        group.terminate(None).await;
    });
}

#[test]
fn receive_each_returns_the_first_error() {
    let group = group_of(2);
    block_on(async {
        let mch = MultiChannel::new(vec![
            group.gateways()[0]
                .remote_exec("channel.send(1)")
                .await
                .expect("exec"),
            group.gateways()[1]
                .remote_exec("raise KeyError('nope')")
                .await
                .expect("exec"),
        ]);
        let err = mch.receive_each::<i64>().await.expect_err("second raised");
        assert!(err.to_string().contains("KeyError"), "{err}");
        group.terminate(None).await;
    });
}

#[test]
fn receive_queue_gets_every_item_with_its_index() {
    let group = group_of(3);
    block_on(async {
        let mch = group
            .remote_exec("import os\nfor i in range(5): channel.send((os.getpid(), i))")
            .await
            .expect("exec");
        // (channel index, (pid, i)); a remote error would fail here.
        let items: Vec<(usize, (u32, i64))> = mch
            .receive_queue()
            .map(|(index, item)| {
                let value = item.expect("no remote error");
                (index, execnet_gateway::from_value(value).expect("(pid, i)"))
            })
            .collect()
            .await;
        assert_eq!(items.len(), 15, "{items:?}");
        let pids: Vec<u32> = group
            .gateways()
            .iter()
            .map(|gw| gw.pid().expect("pid"))
            .collect();
        for (channel, &pid) in pids.iter().enumerate() {
            let from_it: Vec<(u32, i64)> = items
                .iter()
                .filter(|(index, _)| *index == channel)
                .map(|(_, item)| *item)
                .collect();
            let expected: Vec<(u32, i64)> = (0..5).map(|i| (pid, i)).collect();
            assert_eq!(from_it, expected, "channel {channel} in its own order");
        }
        group.terminate(None).await;
    });
}

#[test]
fn receive_queue_yields_items_as_they_arrive() {
    let group = group_of(2);
    block_on(async {
        // Channel 0 sends only when told; channel 1 at once.
        let mch = MultiChannel::new(vec![
            group.gateways()[0]
                .remote_exec("channel.send(channel.receive())")
                .await
                .expect("exec"),
            group.gateways()[1]
                .remote_exec("channel.send('now')")
                .await
                .expect("exec"),
        ]);
        let mut queue = mch.receive_queue();
        assert_eq!(queue.open_channels(), 2);
        let (index, item) = queue.next().await.expect("an item");
        assert_eq!((index, item.expect("ok")), (1, Value::from("now")));
        // Nothing more comes until channel 0 is told; a timeout loses nothing.
        let waited = queue.recv_timeout(Duration::from_millis(200)).await;
        assert!(matches!(waited, Err(Error::Timeout(_))), "{waited:?}");
        mch.channels()[0].send("later").await.expect("send");
        let (index, item) = queue
            .recv_timeout(Duration::from_secs(30))
            .await
            .expect("an item");
        assert_eq!((index, item.expect("ok")), (0, Value::from("later")));
        assert!(queue.next().await.is_none());
        assert_eq!(queue.open_channels(), 0);
        assert!(matches!(queue.recv().await, Err(Error::Closed)));
        group.terminate(None).await;
    });
}

#[test]
fn receive_queue_remote_error_is_an_item_and_eof_is_not() {
    let group = group_of(2);
    block_on(async {
        let mch = MultiChannel::new(vec![
            group.gateways()[0]
                .remote_exec("channel.send(1)\nraise ValueError('boom')")
                .await
                .expect("exec"),
            group.gateways()[1]
                .remote_exec("channel.send(2)")
                .await
                .expect("exec"),
        ]);
        let mut first = Vec::new();
        let mut second = Vec::new();
        let mut queue = mch.receive_queue();
        while let Some((index, item)) = queue.next().await {
            match index {
                0 => first.push(item),
                1 => second.push(item),
                other => panic!("index {other}"),
            }
        }
        assert_eq!(first.len(), 2, "{first:?}");
        assert_eq!(int(first[0].as_ref().expect("1")), 1);
        let err = first[1].as_ref().expect_err("remote error");
        assert!(
            err.as_remote()
                .is_some_and(|e| e.formatted().contains("ValueError: boom")),
            "{err:?}"
        );
        assert_eq!(second.len(), 1, "{second:?}");
        assert_eq!(int(second[0].as_ref().expect("2")), 2);
        group.terminate(None).await;
    });
}

#[test]
fn receive_queue_ends_channels_of_a_dead_worker() {
    let group = group_of(2);
    block_on(async {
        let mch = group
            .remote_exec("import os\nchannel.send(1)\nif channel.receive(): os._exit(1)\n")
            .await
            .expect("exec");
        mch.channels()[0].send(&true).await.expect("send");
        mch.channels()[1].send(&false).await.expect("send");
        let items: Vec<(usize, Result<Value, Error>)> = mch.receive_queue().collect().await;
        let errors: Vec<&(usize, Result<Value, Error>)> =
            items.iter().filter(|i| i.1.is_err()).collect();
        assert_eq!(items.len(), 3, "{items:?}");
        assert_eq!(errors.len(), 1, "{items:?}");
        assert_eq!(errors[0].0, 0);
        assert!(
            matches!(errors[0].1, Err(Error::ConnectionLost(_))),
            "{items:?}"
        );
        group.terminate(None).await;
    });
}

#[test]
fn empty_receive_queue_ends_at_once() {
    block_on(async {
        let mut queue = MultiChannel::default().receive_queue();
        assert!(queue.next().await.is_none());
    });
}

#[test]
fn wait_close_first_remote_error_wins() {
    let group = group_of(3);
    block_on(async {
        let gws = group.gateways();
        // Channel 2 raises at once, channel 1 only when told: the first
        // error in channel order wins, not the first in time.
        let mch = MultiChannel::new(vec![
            gws[0].remote_exec("pass").await.expect("exec"),
            gws[1]
                .remote_exec("channel.receive()\nraise ValueError('one')")
                .await
                .expect("exec"),
            gws[2]
                .remote_exec("raise ValueError('two')")
                .await
                .expect("exec"),
        ]);
        let (result, sent) = futures_lite::future::zip(
            mch.wait_close(Some(Duration::from_secs(30))),
            mch.channels()[1].send("go"),
        )
        .await;
        sent.expect("send");
        let err = result.expect_err("remote errors");
        let remote = err.as_remote().expect("a remote error");
        assert!(remote.formatted().contains("ValueError: one"), "{remote}");
        group.terminate(None).await;
    });
}

#[test]
fn wait_close_remote_error_wins_over_timeout() {
    let group = group_of(2);
    block_on(async {
        let gws = group.gateways();
        let mch = MultiChannel::new(vec![
            gws[0].remote_exec("channel.receive()").await.expect("exec"),
            gws[1]
                .remote_exec("raise ValueError('x')")
                .await
                .expect("exec"),
        ]);
        let err = mch
            .wait_close(Some(Duration::from_millis(500)))
            .await
            .expect_err("an error");
        assert!(err.as_remote().is_some(), "{err:?}");
        // Without a remote error, a channel still open is a timeout.
        let mch = MultiChannel::new(vec![
            gws[0].remote_exec("channel.receive()").await.expect("exec"),
            gws[1].remote_exec("pass").await.expect("exec"),
        ]);
        let err = mch
            .wait_close(Some(Duration::from_millis(300)))
            .await
            .expect_err("timeout");
        assert!(matches!(err, Error::Timeout(_)), "{err:?}");
        // And when all end cleanly, Ok.
        mch.channels()[0].send(&1).await.expect("send");
        mch.wait_close(Some(Duration::from_secs(30)))
            .await
            .expect("all ended");
        group.terminate(None).await;
    });
}

#[test]
fn group_remote_exec_code_calls_the_function_on_every_member() {
    let group = group_of(2);
    block_on(async {
        let code = execnet_gateway::RemoteCode::new(
            "def work(channel, factor):\n    channel.send(channel.gateway.id + '*' + str(factor))\n",
        )
        .call("work", [("factor", Value::from(3))]);
        let mch = group.remote_exec_code(code).await.expect("exec");
        let items: Vec<String> = mch.receive_each().await.expect("items");
        assert_eq!(items, ["gw0-worker*3", "gw1-worker*3"]);
        mch.wait_close(None).await.expect("no error");
        group.terminate(None).await;
    });
}
