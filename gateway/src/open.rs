//! Opening a gateway: from a spec to a transport (one match arm per kind of
//! spec, in [`plan`]), then the bootstrap over the stream until the worker's
//! hello.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use execnet_proto::{Role, Session, SessionConfig};
use execnet_transport::{CommandTransport, Connection, SshTransport, Step, Transport};
use execnet_xspec::{Kind, XSpec};

use crate::bootstrap::{self, Cause, StartFailure};
use crate::code_cache::Program;
use crate::driver::Driver;
use crate::error::{Error, Result};
use crate::gateway::{Gateway, Options};
use crate::runtime::wait_bounded;
use crate::stderr::StderrLines;

/// Ids `gw0`, `gw1`, … for gateways opened outside a group.
static NEXT_ID: AtomicUsize = AtomicUsize::new(0);

/// How to reach the worker of a spec.
struct Plan {
    transport: Box<dyn Transport>,
    /// The far end is a Python installed here that this process starts
    /// itself, trusted to compile the worker for the cache that serves
    /// later gateways ([`bootstrap::compiles_honestly`]).
    learn_code: bool,
}

/// The transport of each kind of spec: adding a kind is one arm here.
fn plan(spec: &XSpec, id: &str, options: &Options) -> Result<Plan> {
    let (transport, learn_code): (Box<dyn Transport>, bool) = match spec.kind() {
        Kind::Popen => {
            let argv = bootstrap::worker_argv(spec);
            let mut cmd = std::process::Command::new(&argv[0]);
            cmd.args(&argv[1..]);
            let program = match spec.python() {
                Some(p) => format!("python={p}"),
                None => argv[0].clone(),
            };
            let trusted = bootstrap::compiles_honestly(&bootstrap::python_command(spec));
            (Box::new(CommandTransport::new_group(cmd, program)), trusted)
        }
        Kind::Ssh(args) => {
            let multiplex = spec
                .get("ssh_multiplex")
                .is_none_or(|v| !matches!(v, "no" | "false" | "0" | "off"));
            let ssh = SshTransport::new(args, bootstrap::worker_argv(spec))
                .config(spec.ssh_config())
                .multiplex(multiplex);
            (Box::new(ssh), false)
        }
        Kind::Socket(addr) => (socket_transport(addr, spec, id, options)?, false),
        // `Kind` is non-exhaustive: the spec parser may know a kind that
        // this version of the gateway cannot open.
        other => {
            return Err(Error::Bootstrap {
                gateway: id.to_string(),
                step: Step::Connect,
                message: format!("{other:?} gateways are not supported"),
            })
        }
    };
    Ok(Plan {
        transport,
        learn_code,
    })
}

/// `socket=ADDR`: the server's handshake with the token of `token_file=` or
/// `EXECNET_TOKEN` (a file open to others, or a weak token, is refused
/// before connecting); a server that requires no token only with
/// `insecure_no_auth` in the spec or the options.
#[cfg(feature = "socket")]
pub(crate) fn socket_transport(
    addr: &str,
    spec: &XSpec,
    id: &str,
    options: &Options,
) -> Result<Box<dyn Transport>> {
    // Not an authentication failure: nothing was tried yet.
    let token = crate::Token::for_client(spec.token_file()).map_err(|e| Error::Bootstrap {
        gateway: id.to_string(),
        step: Step::Connect,
        message: e.to_string(),
    })?;
    let insecure = spec.insecure_no_auth() || options.insecure_no_auth;
    Ok(Box::new(
        crate::SocketTransport::new(addr, token).insecure_no_auth(insecure),
    ))
}

#[cfg(not(feature = "socket"))]
pub(crate) fn socket_transport(
    addr: &str,
    _spec: &XSpec,
    id: &str,
    _options: &Options,
) -> Result<Box<dyn Transport>> {
    Err(Error::Bootstrap {
        gateway: id.to_string(),
        step: Step::Connect,
        message: format!(
            "socket={addr}: this build has no socket gateways (enable the `socket` feature of \
             execnet or execnet-gateway)"
        ),
    })
}

impl Gateway {
    /// Open a gateway from a spec string (`"popen"`,
    /// `"popen//python=python3.11"`, `"popen//chdir=work//id=a"`,
    /// `"ssh=-p 2222 user@host//chdir=work"`, `"socket=127.0.0.1:8888"`).
    ///
    /// The id is the spec's `id=`, else `gw0`, `gw1`, … in opening order.
    /// A spec with `via=` or `installvia=` names another gateway: open it
    /// with a `Group` (or [`Gateway::open_via`],
    /// [`Gateway::open_installvia`]).
    ///
    /// # Examples
    ///
    /// ```
    /// # use execnet_gateway as execnet;
    /// # futures_lite::future::block_on(async {
    /// let gw = execnet::Gateway::open("popen//id=worker//env:GREETING=hi").await?;
    /// assert_eq!(gw.id(), "worker");
    /// let ch = gw.remote_exec("import os; channel.send(os.environ['GREETING'])").await?;
    /// assert_eq!(ch.receive::<String>().await?, "hi");
    /// gw.exit().await?;
    ///
    /// // A missing interpreter is an error naming the step that failed.
    /// let err = execnet::Gateway::open("popen//python=/nonexistent/python9").await.unwrap_err();
    /// assert!(matches!(err, execnet::Error::Bootstrap { step: execnet::Step::Spawn, .. }));
    /// # Ok::<_, execnet::Error>(()) }).unwrap();
    /// ```
    pub async fn open(spec: &str) -> Result<Gateway> {
        Self::open_with(XSpec::parse(spec)?, Options::default()).await
    }

    /// Open a gateway from a parsed spec, with options.
    ///
    /// # Examples
    ///
    /// ```
    /// # use execnet_gateway as execnet;
    /// use std::time::Duration;
    /// use execnet::{Gateway, Options, XSpec};
    ///
    /// # futures_lite::future::block_on(async {
    /// let options = Options::default()
    ///     .bootstrap_timeout(Duration::from_secs(10))
    ///     .window(1 << 20);
    /// let gw = Gateway::open_with(XSpec::parse("popen")?, options).await?;
    /// gw.exit().await?;
    /// # Ok::<_, execnet::Error>(()) }).unwrap();
    /// ```
    pub async fn open_with(spec: XSpec, options: Options) -> Result<Gateway> {
        let id = match spec.id() {
            Some(id) => id.to_string(),
            None => format!("gw{}", NEXT_ID.fetch_add(1, Ordering::Relaxed)),
        };
        Self::open_with_id(spec, id, options).await
    }

    /// Open a gateway with the given id (the Group layer chooses ids).
    ///
    /// # Examples
    ///
    /// ```
    /// # use execnet_gateway as execnet;
    /// # futures_lite::future::block_on(async {
    /// use execnet::{Gateway, Options, XSpec};
    ///
    /// let gw = Gateway::open_with_id(XSpec::parse("popen")?, "builder-1".into(), Options::default()).await?;
    /// assert_eq!(gw.id(), "builder-1");
    /// # gw.exit().await?;
    /// # Ok::<_, execnet::Error>(()) }).unwrap();
    /// ```
    pub async fn open_with_id(spec: XSpec, id: String, options: Options) -> Result<Gateway> {
        // A typo ("popn", "chdri=") must not open a gateway it did not mean.
        spec.check_keys()?;
        let route = spec
            .via()
            .map(|v| format!("via={v}"))
            .or_else(|| spec.installvia().map(|v| format!("installvia={v}")));
        if let Some(route) = route {
            return Err(Error::Bootstrap {
                gateway: id,
                step: Step::Route,
                message: format!(
                    "{route} names another gateway: open it with a Group (or Gateway::open_via / open_installvia)"
                ),
            });
        }
        // Most gateways are forks of a warm spawner of their place.
        if let Some(place) = crate::spawn::place_of(&spec, &id, &options)? {
            return crate::spawn::open(place, spec, id, options, None).await;
        }
        let plan = plan(&spec, &id, &options)?;
        Self::connect_with(plan.transport, spec, id, options, plan.learn_code).await
    }

    /// Open a gateway over any [`Transport`] whose far end runs the
    /// bootstrap (`python -c LOADER`, see [`crate::LOADER`]).
    ///
    /// # Examples
    ///
    /// ```
    /// # use execnet_gateway as execnet;
    /// use execnet::{transport::CommandTransport, Gateway, XSpec, LOADER};
    ///
    /// # futures_lite::future::block_on(async {
    /// // The worker under `env`, as a stand-in for `docker exec -i` & co.
    /// let mut cmd = async_process::Command::new("env");
    /// cmd.args(["WRAPPED=1", "python3", "-c", LOADER]);
    /// let transport = CommandTransport::new(cmd, "python3 under env");
    /// let gw = Gateway::from_transport(transport, XSpec::parse("popen")?, "wrapped").await?;
    /// let ch = gw.remote_exec("import os; channel.send(os.environ['WRAPPED'])").await?;
    /// assert_eq!(ch.receive::<String>().await?, "1");
    /// gw.exit().await?;
    /// # Ok::<_, execnet::Error>(()) }).unwrap();
    /// ```
    pub async fn from_transport(
        transport: impl Transport,
        spec: XSpec,
        id: impl Into<String>,
    ) -> Result<Gateway> {
        Self::from_transport_with(Box::new(transport), spec, id.into(), Options::default()).await
    }

    /// [`Gateway::from_transport`] with options.
    ///
    /// # Examples
    ///
    /// ```
    /// # use execnet_gateway as execnet;
    /// # futures_lite::future::block_on(async {
    /// use std::time::Duration;
    /// use execnet::{transport::CommandTransport, Gateway, Options, XSpec, LOADER};
    ///
    /// let mut cmd = async_process::Command::new("python3");
    /// cmd.args(["-c", LOADER]);
    /// let transport = Box::new(CommandTransport::new(cmd, "python3"));
    /// let options = Options::default().bootstrap_timeout(Duration::from_secs(10));
    /// let gw = Gateway::from_transport_with(transport, XSpec::parse("popen")?, "gw-t".into(), options).await?;
    /// # gw.exit().await?;
    /// # Ok::<_, execnet::Error>(()) }).unwrap();
    /// ```
    pub async fn from_transport_with(
        transport: Box<dyn Transport>,
        spec: XSpec,
        id: String,
        options: Options,
    ) -> Result<Gateway> {
        Self::connect_with(transport, spec, id, options, false).await
    }

    async fn connect_with(
        mut transport: Box<dyn Transport>,
        spec: XSpec,
        id: String,
        options: Options,
        learn: bool,
    ) -> Result<Gateway> {
        let conn = transport.connect().await.map_err(|e| Error::Bootstrap {
            gateway: id.clone(),
            step: e.step(),
            message: e.to_string(),
        })?;
        let ship = Ship::Worker { learn };
        bootstrap(conn, spec, id, options, ship, Some(&mut *transport)).await
    }

    /// Run the bootstrap over an open [`Connection`] and wait for the hello.
    ///
    /// # Examples
    ///
    /// ```
    /// # use execnet_gateway as execnet;
    /// # futures_lite::future::block_on(async {
    /// use execnet::{transport::CommandTransport, Gateway, Options, XSpec, LOADER};
    ///
    /// // A stream opened by other means (here a plain child process).
    /// let mut cmd = async_process::Command::new("python3");
    /// cmd.args(["-c", LOADER]);
    /// let conn = CommandTransport::new(cmd, "python3").spawn()?;
    /// let gw = Gateway::from_connection(conn, XSpec::parse("popen")?, "gw-c".into(), Options::default()).await?;
    /// let ch = gw.remote_exec("channel.send(__name__)").await?;
    /// assert_eq!(ch.receive::<String>().await?, "__channelexec__");
    /// # gw.exit().await?;
    /// # Ok::<_, Box<dyn std::error::Error>>(()) }).unwrap();
    /// ```
    pub async fn from_connection(
        conn: Connection,
        spec: XSpec,
        id: String,
        options: Options,
    ) -> Result<Gateway> {
        bootstrap(conn, spec, id, options, Ship::Worker { learn: false }, None).await
    }
}

/// What runs at the far end of a new connection.
#[derive(Clone, Copy, Debug)]
pub(crate) enum Ship {
    /// The loader: ship the worker. `learn`: the far end is an interpreter
    /// this process started, so its compiled worker may be cached for later
    /// gateways.
    Worker { learn: bool },
    /// A worker already (forked by a spawner).
    Running,
}

/// Ship the worker, start the driver, wait for the hello; on failure, an
/// error that says which step failed and quotes what came back.
pub(crate) async fn bootstrap(
    conn: Connection,
    spec: XSpec,
    id: String,
    options: Options,
    ship: Ship,
    // `&mut`: a `&mut` of a `Send` transport is `Send`, so the open future
    // stays `Send` across the awaits (a `&dyn Transport` would need `Sync`).
    transport: Option<&mut dyn Transport>,
) -> Result<Gateway> {
    let Connection {
        mut reader,
        mut writer,
        stderr,
        stderr_tail,
        process,
        description,
    } = conn;
    let config = SessionConfig::default()
        .window(options.window)
        .max_frame(options.max_frame)
        .info(bootstrap::hello_info(&spec, &id));
    let session = Session::new(Role::Opener, config);
    let driver = Driver::new(session, &id, process, stderr_tail.clone(), description);
    let lines = StderrLines::pumped(&id, options.forward_stderr, stderr, &stderr_tail);
    driver.watch_process();
    let gateway = Gateway::new(driver.clone(), spec, id.clone(), options.clone());
    let shipped = wait_bounded(
        async {
            match ship {
                Ship::Worker { learn } => {
                    bootstrap::ship_worker(&mut reader, &mut writer, learn, Program::Worker).await
                }
                // A forked worker runs already and says hello first.
                Ship::Running => Ok(()),
            }
        },
        options.bootstrap_timeout,
    )
    .await;
    let failed = match shipped {
        Some(Ok(())) => None,
        Some(Err(failure)) => {
            driver.lock().first_bytes = failure.first_bytes;
            driver.lose(execnet_proto::Loss::Ended(failure.reason));
            Some(Cause::Lost)
        }
        None => Some(Cause::Timeout(options.bootstrap_timeout)),
    };
    let cause = match failed {
        Some(cause) => cause,
        None => {
            driver.start(reader, writer, options.max_frame);
            match wait_bounded(driver.wait_hello(), options.bootstrap_timeout).await {
                Some(true) => {
                    lines.started();
                    return Ok(gateway);
                }
                Some(false) => Cause::Lost,
                None => Cause::Timeout(options.bootstrap_timeout),
            }
        }
    };
    let failure = {
        let st = driver.lock();
        StartFailure {
            process: driver.process.as_deref(),
            stderr: &driver.stderr_tail,
            first_bytes: st.first_bytes.clone(),
            loss: st.session.loss().cloned(),
            description: &driver.description,
            transport,
        }
    };
    let err = bootstrap::diagnose(failure, &id, cause).await;
    driver.exit(Duration::from_millis(100)).await;
    Err(err)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every kind of spec the parser knows reaches a transport here: a new
    /// kind added to execnet-xspec without its arm in `plan` fails this
    /// test (the compiler cannot tell, `Kind` being non-exhaustive).
    #[test]
    fn every_kind_the_spec_parser_knows_has_a_transport() {
        let mut kinds = Vec::new();
        for key in execnet_xspec::KNOWN_KEYS {
            for text in [key.to_string(), format!("{key}=127.0.0.1:1")] {
                let Ok(spec) = XSpec::parse(&text) else {
                    continue;
                };
                if *key != "popen" && spec.kind() == &Kind::Popen {
                    continue; // not a transport key
                }
                match plan(&spec, "t", &Options::default()) {
                    Ok(_) => {}
                    // Compiled out on purpose, and it says so.
                    Err(e) if !cfg!(feature = "socket") && *key == "socket" => {
                        assert!(e.to_string().contains("`socket` feature"), "{e}");
                    }
                    Err(e) => panic!("{text}: no transport: {e}"),
                }
                kinds.push(spec.kind().clone());
            }
        }
        kinds.dedup_by(|a, b| std::mem::discriminant(a) == std::mem::discriminant(b));
        assert!(
            kinds.len() >= 3,
            "popen, ssh and socket at least: {kinds:?}"
        );
    }
}
