//! Gateways opened through other gateways: `via=` (the new worker is a child
//! of the via gateway's worker, its bytes relayed over a channel) and
//! `installvia=` (a one-connection socket server started inside a gateway).

use execnet_transport::{Connection, StderrTail, Step};
use execnet_xspec::{Kind, XSpec};

use crate::error::{Error, Result};
use crate::gateway::{Gateway, Options};

/// Run by the via gateway's worker: spawn the interpreter, relay its bytes.
const RELAY: &str = include_str!("../worker/relay.py");
/// Run by the installvia gateway's worker: the one-connection socket server.
#[cfg(feature = "socket")]
const SERVE: &str = include_str!("../worker/serve.py");

impl Gateway {
    /// Open a gateway whose worker is started by `via`'s worker and whose
    /// bytes travel over a channel of `via`.
    ///
    /// By default the worker is a fork of a spawner that `via`'s worker
    /// starts for the first such gateway (Python's `subprocess`, with the
    /// spec's `python=` or the via worker's own interpreter): one
    /// interpreter start per via gateway and interpreter, every further
    /// gateway a fork, their streams multiplexed over one relay channel.
    /// With `spawn=direct` each gateway is an interpreter of its own, a
    /// child of `via`'s worker.
    ///
    /// The spec's `via=` is what a [`Group`](https://docs.rs/execnet) resolves
    /// to `via`; it is not read here.
    ///
    /// # Examples
    ///
    /// ```
    /// # use execnet_gateway as execnet;
    /// # futures_lite::future::block_on(async {
    /// use execnet::{Gateway, Options, XSpec};
    ///
    /// let master = Gateway::open("popen").await?;
    /// let spec = XSpec::parse("popen//via=master//spawn=direct")?;
    /// let sub = Gateway::open_via(spec, "sub".into(), &master, Options::default()).await?;
    /// let ch = sub.remote_exec("import os; channel.send(os.getppid())").await?;
    /// // With spawn=direct the new worker is a child of the master's worker.
    /// assert_eq!(Some(ch.receive::<u32>().await?), master.rinfo().await.map(|i| i.pid).ok());
    /// # sub.exit().await?;
    /// # master.exit().await?;
    /// # Ok::<_, execnet::Error>(()) }).unwrap();
    /// ```
    pub async fn open_via(
        spec: XSpec,
        id: String,
        via: &Gateway,
        options: Options,
    ) -> Result<Gateway> {
        spec.check_keys()?;
        let route_err = |message: String| Error::Bootstrap {
            gateway: id.clone(),
            step: Step::Route,
            message,
        };
        if !matches!(spec.kind(), Kind::Popen) {
            return Err(route_err(format!(
                "via={}: only popen gateways can be opened through another gateway",
                via.id()
            )));
        }
        if let Some(place) = crate::spawn::place_of_via(&spec, via) {
            return crate::spawn::open(place, spec, id, options, Some(via)).await;
        }
        let conn = relay_connection(&spec, &id, via).await?;
        Gateway::from_connection(conn, spec, id, options).await
    }

    /// Open a `socket=HOST:PORT` gateway by first starting a socket server
    /// inside `master` listening on HOST:PORT (port 0: any free port), with
    /// a fresh token handed back over a channel, then connecting to it
    /// (execnet's `SocketGateway.new_remote`). The server accepts one
    /// authenticated connection.
    ///
    /// # Examples
    ///
    /// ```
    /// # use execnet_gateway as execnet;
    /// # futures_lite::future::block_on(async {
    /// use execnet::{Gateway, Options, XSpec};
    ///
    /// let master = Gateway::open("popen").await?;
    /// let spec = XSpec::parse("socket=127.0.0.1:0//installvia=master")?;
    /// let gw = Gateway::open_installvia(spec, "served".into(), &master, Options::default()).await?;
    /// let ch = gw.remote_exec("channel.send('over the socket')").await?;
    /// assert_eq!(ch.receive::<String>().await?, "over the socket");
    /// # gw.exit().await?;
    /// # master.exit().await?;
    /// # Ok::<_, execnet::Error>(()) }).unwrap();
    /// ```
    pub async fn open_installvia(
        spec: XSpec,
        id: String,
        master: &Gateway,
        options: Options,
    ) -> Result<Gateway> {
        spec.check_keys()?;
        let route_err = |message: String| Error::Bootstrap {
            gateway: id.clone(),
            step: Step::Route,
            message: format!("installvia={}: {message}", master.id()),
        };
        let Kind::Socket(addr) = spec.kind() else {
            return Err(route_err(
                "installvia= needs a socket=HOST:PORT spec".into(),
            ));
        };
        let (host, port) = split_host_port(addr)
            .ok_or_else(|| route_err(format!("socket={addr}: expected HOST:PORT")))?;
        let conn = install_server(master, host, port, &id, &route_err).await?;
        Gateway::from_connection(conn, spec, id, options).await
    }
}

/// A connection to a fresh `python -c LOADER` started by `via`'s worker
/// (the spec's `python=`, or the via worker's own interpreter), its bytes
/// relayed over a channel of `via`.
pub(crate) async fn relay_connection(spec: &XSpec, id: &str, via: &Gateway) -> Result<Connection> {
    let route_err = |message: String| Error::Bootstrap {
        gateway: id.to_string(),
        step: Step::Route,
        message,
    };
    let python = spec
        .python()
        .map(|_| crate::bootstrap::python_command(spec));
    let channel = via
        .remote_exec(RELAY)
        .await
        .map_err(|e| route_err(format!("via={}: starting the relay failed: {e}", via.id())))?;
    channel
        .send(&(python, crate::LOADER))
        .await
        .map_err(|e| route_err(format!("via={}: starting the relay failed: {e}", via.id())))?;
    // The bytes travel over a channel of their own: the relay's exec
    // returns at once, so a main_thread_only via gateway stays free.
    let relay: crate::Channel = channel
        .receive()
        .await
        .map_err(|e| route_err(format!("via={}: starting the relay failed: {e}", via.id())))?;
    drop(channel);
    let conn = Connection {
        reader: Box::pin(relay.reader()),
        writer: Box::pin(relay.writer()),
        stderr: None,
        stderr_tail: StderrTail::new(),
        process: None,
        description: format!("python through via={}", via.id()),
    };
    Ok(conn)
}

/// Start the one-connection server inside `master` on `host:port`, and
/// connect to it with the token it hands back.
#[cfg(feature = "socket")]
async fn install_server(
    master: &Gateway,
    host: &str,
    port: u16,
    id: &str,
    route_err: &impl Fn(String) -> Error,
) -> Result<Connection> {
    let channel = master
        .remote_exec(SERVE)
        .await
        .map_err(|e| route_err(format!("starting the server failed: {e}")))?;
    channel
        .send(&(host, port, crate::LOADER))
        .await
        .map_err(|e| route_err(format!("starting the server failed: {e}")))?;
    let (real_port, token): (u16, String) = channel
        .receive()
        .await
        .map_err(|e| route_err(format!("starting the server on {host}:{port} failed: {e}")))?;
    let token =
        crate::Token::new(&token).ok_or_else(|| route_err("the server sent no token".into()))?;
    let target = if host.contains(':') {
        format!("[{host}]:{real_port}")
    } else {
        format!("{host}:{real_port}")
    };
    let mut conn = crate::SocketTransport::new(target.clone(), Some(token))
        .open()
        .await
        .map_err(|e| Error::Bootstrap {
            gateway: id.to_string(),
            step: e.step(),
            message: e.to_string(),
        })?;
    conn.description = format!("socket {target} (installvia={})", master.id());
    // The server snippet runs as long as the relayed worker; its channel
    // need not be kept.
    drop(channel);
    Ok(conn)
}

#[cfg(not(feature = "socket"))]
async fn install_server(
    _master: &Gateway,
    host: &str,
    port: u16,
    _id: &str,
    route_err: &impl Fn(String) -> Error,
) -> Result<Connection> {
    Err(route_err(format!(
        "socket={host}:{port}: this build has no socket gateways (enable the `socket` feature \
         of execnet or execnet-gateway)"
    )))
}

/// `host:port` or `[v6]:port`.
pub(crate) fn split_host_port(addr: &str) -> Option<(&str, u16)> {
    let (host, port) = addr.rsplit_once(':')?;
    let host = host.trim_start_matches('[').trim_end_matches(']');
    Some((host, port.parse().ok()?))
}
