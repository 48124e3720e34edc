//! `execnet exec`: run code on gateways, print items as they arrive.

use std::io::Write;
use std::time::Duration;

use execnet::{Error, Group, MultiChannel};
use futures_lite::StreamExt;

use super::open::{self, Planned};
use super::{json, report, ExecArgs, FAILED, OK, USAGE};

/// How long `exit` waits for the workers before killing them.
const EXIT_TIMEOUT: Duration = Duration::from_secs(2);

pub fn run(args: ExecArgs) -> u8 {
    let source = match (&args.code, &args.file) {
        (Some(code), _) => code.clone(),
        (None, Some(path)) => match std::fs::read_to_string(path) {
            Ok(source) => source,
            Err(e) => {
                eprintln!("execnet: cannot read {}: {e}", path.display());
                return USAGE;
            }
        },
        // clap requires one of them.
        (None, None) => return USAGE,
    };
    let mut specs = args.specs.clone();
    specs.extend(std::iter::repeat_n(
        "popen".to_string(),
        args.popen.unwrap_or(0),
    ));
    let Some(planned) = open::plan_or_report(specs) else {
        return USAGE;
    };
    futures_lite::future::block_on(exec(planned, &source, args.json))
}

async fn exec(planned: Vec<Planned>, source: &str, json: bool) -> u8 {
    let group = Group::with_options(open::options());
    let mut failed = false;
    let mut ids = Vec::new();
    let mut channels = Vec::new();
    for opened in open::open_all(&group, planned).await {
        let started = match &opened.gateway {
            Ok(gateway) => gateway
                .remote_exec(source)
                .await
                .map_err(|e| format!("remote_exec failed: {e}")),
            Err(e) => Err(open::describe_failure(&opened, e)),
        };
        match started {
            Ok(channel) => {
                ids.push(opened.id);
                channels.push(channel);
            }
            Err(message) => {
                report(&opened.id, &message);
                failed = true;
            }
        }
    }
    let mut queue = MultiChannel::new(channels).receive_queue();
    let mut stdout = std::io::stdout().lock();
    while let Some((index, item)) = queue.next().await {
        let id = &ids[index];
        match item {
            Ok(value) => {
                let line = if json {
                    format!(
                        "{{\"gateway\": {}, \"item\": {}}}",
                        json::string(id),
                        json::to_json(&value)
                    )
                } else {
                    format!("{id}: {}", value.repr())
                };
                // A closed stdout (`| head`) ends the output, not the run.
                if writeln!(stdout, "{line}").is_err() {
                    break;
                }
            }
            Err(Error::Remote(e)) => {
                report(id, e.formatted());
                failed = true;
            }
            Err(e) => {
                report(id, &format!("receiving failed: {e}"));
                failed = true;
            }
        }
    }
    drop(queue);
    let _ = stdout.flush();
    group.terminate(Some(EXIT_TIMEOUT)).await;
    if failed {
        FAILED
    } else {
        OK
    }
}
