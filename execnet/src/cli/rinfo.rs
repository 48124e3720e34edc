//! `execnet rinfo`: facts about the interpreters behind some specs.

use std::io::Write;
use std::time::Duration;

use execnet::{Group, RInfo};

use super::open;
use super::{json, report, RinfoArgs, FAILED, OK, USAGE};

const EXIT_TIMEOUT: Duration = Duration::from_secs(2);

pub fn run(args: RinfoArgs) -> u8 {
    let Some(planned) = open::plan_or_report(args.specs) else {
        return USAGE;
    };
    futures_lite::future::block_on(async {
        let group = Group::with_options(open::options());
        let opened = open::open_all(&group, planned).await;
        let infos = futures_util::future::join_all(opened.iter().map(|o| async move {
            match &o.gateway {
                Ok(gateway) => gateway
                    .rinfo()
                    .await
                    .map_err(|e| format!("rinfo failed: {e}")),
                Err(e) => Err(open::describe_failure(o, e)),
            }
        }))
        .await;
        let mut failed = false;
        let mut stdout = std::io::stdout().lock();
        for (o, info) in opened.iter().zip(infos) {
            match info {
                Ok(info) => {
                    let text = if args.json {
                        json_line(&o.id, &o.spec, &info)
                    } else {
                        text_block(&o.id, &o.spec, &info)
                    };
                    let _ = writeln!(stdout, "{text}");
                }
                Err(message) => {
                    report(&o.id, &message);
                    failed = true;
                }
            }
        }
        let _ = stdout.flush();
        group.terminate(Some(EXIT_TIMEOUT)).await;
        if failed {
            FAILED
        } else {
            OK
        }
    })
}

fn text_block(id: &str, spec: &str, info: &RInfo) -> String {
    format!(
        "{id}: {spec}\n  executable: {}\n  version:    {}\n  platform:   {}\n  cwd:        {}\n  pid:        {}",
        info.executable, info.version, info.platform, info.cwd, info.pid
    )
}

fn json_line(id: &str, spec: &str, info: &RInfo) -> String {
    format!(
        "{{\"gateway\": {}, \"spec\": {}, \"executable\": {}, \"version\": {}, \"platform\": {}, \"cwd\": {}, \"pid\": {}}}",
        json::string(id),
        json::string(spec),
        json::string(&info.executable),
        json::string(&info.version),
        json::string(&info.platform),
        json::string(&info.cwd),
        info.pid
    )
}
