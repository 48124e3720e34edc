//! Channels travel inside messages: the worker opens a side channel for
//! progress reports and hands it over with its first message, while the
//! main channel carries the result.
//!
//! ```text
//! cargo run -p execnet --example channels_in_messages
//! ```

use execnet::blocking::{Channel, Gateway};

const SOURCE: &str = "
progress = channel.gateway.newchannel()
channel.send(('progress', progress))
total = 0
for i in range(1, 6):
    total += i * i
    progress.send(i)
progress.close()
channel.send(('result', total))
";

fn main() -> execnet::Result<()> {
    let gw = Gateway::open("popen")?;
    let ch = gw.remote_exec(SOURCE)?;
    let (_tag, progress): (String, Channel) = ch.receive()?;
    for step in progress {
        println!("step {} done", execnet::from_value::<i64>(step?)?);
    }
    let (_tag, total): (String, i64) = ch.receive()?;
    println!("sum of squares 1..=5 = {total}");

    // The other direction: a channel made here, sent to the worker.
    let reply = gw.new_channel();
    let ch = gw.remote_exec("reply = channel.receive(); reply.send('answered on my channel')")?;
    ch.send(&reply)?;
    println!("{}", reply.receive::<String>()?);
    gw.exit()
}
