//! [`Group`]: gateways under ids, opened, used and terminated together.

use std::fmt;
use std::sync::{Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use execnet_gateway::{Error, Gateway, Options, RemoteCode, Result, Step, XSpec};
use execnet_xspec::Kind;

use crate::multi::MultiChannel;

/// A set of gateways with unique ids, in creation order.
///
/// Ids are `gw0`, `gw1`, … (counted per group, skipping ids already taken)
/// unless the spec says `id=`. A gateway that exits or dies leaves its group.
/// All methods take `&self`, so one group can open gateways from many tasks
/// (or, with the blocking API, threads) at once.
///
/// Dropping a `Group` terminates its gateways in the background (as
/// [`Group::terminate`] with the group's exit timeout), also those whose
/// handles are still held elsewhere.
///
/// # Examples
///
/// ```
/// # mod execnet { pub use execnet_multichannel::*; pub use execnet_gateway::{from_value, to_value, Error, Gateway, Options, RemoteCode, Result, Value, XSpec}; }
/// use execnet::Group;
///
/// # futures_lite::future::block_on(async {
/// let group = Group::new();
/// let gw = group.make_gateway("popen//id=worker").await?;
/// assert_eq!(gw.id(), "worker");
/// assert!(group.get("worker").is_some_and(|g| g.same(&gw)));
/// assert!(group.make_gateway("popen//id=worker").await.is_err()); // taken
/// group.terminate(None).await;
/// assert!(group.is_empty());
/// # Ok::<_, execnet::Error>(()) }).unwrap();
/// ```
pub struct Group {
    state: Mutex<State>,
    options: Options,
}

#[derive(Default)]
struct State {
    /// Open gateways, ordered by `seq`.
    members: Vec<Member>,
    /// Ids reserved by `make_gateway` calls still opening.
    opening: Vec<String>,
    /// The number of the next automatic id (`gw{n}`).
    next_auto: usize,
    /// Counts `make_gateway` calls: the creation order.
    next_seq: u64,
}

struct Member {
    seq: u64,
    gateway: Gateway,
}

/// How a spec reaches its interpreter, with the group members it names.
enum Route {
    /// Directly (a local process, ssh, a socket).
    Direct,
    /// Through the member named by `via=`.
    Via(Gateway),
    /// A socket server that the member named by `installvia=` starts.
    InstallVia(Gateway),
}

impl Default for Group {
    fn default() -> Self {
        Self::new()
    }
}

impl fmt::Debug for Group {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let st = self.lock();
        let ids: Vec<&str> = st.members.iter().map(|m| m.gateway.id()).collect();
        f.debug_struct("Group")
            .field("gateways", &ids)
            .field("opening", &st.opening)
            .finish()
    }
}

impl Drop for Group {
    fn drop(&mut self) {
        let members = std::mem::take(&mut self.lock().members);
        if members.is_empty() {
            return;
        }
        let gateways: Vec<Gateway> = members.into_iter().map(|m| m.gateway).collect();
        let timeout = self.options.exit_timeout;
        // Not on the caller's thread: drop must not block. If no thread can
        // be started, the gateways' own drop still exits the ones nobody
        // else holds.
        let _ = std::thread::Builder::new()
            .name("execnet-group-drop".into())
            .spawn(move || futures_lite::future::block_on(terminate_all(gateways, timeout)));
    }
}

impl Group {
    /// An empty group whose gateways open with the default [`Options`].
    ///
    /// # Examples
    ///
    /// ```
    /// # mod execnet { pub use execnet_multichannel::*; pub use execnet_gateway::{to_value, Error, Gateway, Options, RemoteCode, Value, XSpec}; }
    /// # futures_lite::future::block_on(async {
    /// let group = execnet::Group::new();
    /// assert!(group.is_empty());
    /// group.make_gateway("popen").await?;
    /// assert_eq!(group.len(), 1);
    /// group.terminate(None).await;
    /// # Ok::<_, execnet::Error>(()) }).unwrap();
    /// ```
    pub fn new() -> Group {
        Self::with_options(Options::default())
    }

    /// An empty group whose gateways open with `options`
    /// (`options.exit_timeout` is also the default of [`Group::terminate`]).
    ///
    /// # Examples
    ///
    /// ```
    /// # mod execnet { pub use execnet_multichannel::*; pub use execnet_gateway::{to_value, Error, Gateway, Options, RemoteCode, Value, XSpec}; }
    /// # futures_lite::future::block_on(async {
    /// use std::time::Duration;
    /// use execnet::{Group, Options};
    ///
    /// let group = Group::with_options(Options::default().exit_timeout(Duration::from_millis(500)));
    /// assert_eq!(group.options().exit_timeout, Duration::from_millis(500));
    /// # Ok::<_, execnet::Error>(()) }).unwrap();
    /// ```
    pub fn with_options(options: Options) -> Group {
        Group {
            state: Mutex::new(State::default()),
            options,
        }
    }

    /// The options gateways of this group are opened with.
    pub fn options(&self) -> &Options {
        &self.options
    }

    /// Open a gateway from a spec string and add it to the group.
    ///
    /// Its id is the spec's `id=`, or the next free `gw0`, `gw1`, … An id
    /// already in the group (or being opened) is an error
    /// (`Error::DuplicateId`). `via=` and `installvia=` name
    /// other members of this group.
    ///
    /// # Examples
    ///
    /// ```
    /// # mod execnet { pub use execnet_multichannel::*; pub use execnet_gateway::{to_value, Error, Gateway, Options, RemoteCode, Value, XSpec}; }
    /// # futures_lite::future::block_on(async {
    /// let group = execnet::Group::new();
    /// let a = group.make_gateway("popen").await?;
    /// let b = group.make_gateway("popen//via=gw0").await?; // started by gw0's worker
    /// assert_eq!((a.id(), b.id()), ("gw0", "gw1"));
    /// let dup = group.make_gateway("popen//id=gw0").await.unwrap_err();
    /// assert!(matches!(dup, execnet::Error::DuplicateId(_)));
    /// group.terminate(None).await;
    /// # Ok::<_, execnet::Error>(()) }).unwrap();
    /// ```
    pub async fn make_gateway(&self, spec: &str) -> Result<Gateway> {
        self.make_gateway_from(XSpec::parse(spec)?).await
    }

    /// [`Group::make_gateway`] with a parsed spec.
    ///
    /// # Examples
    ///
    /// ```
    /// # mod execnet { pub use execnet_multichannel::*; pub use execnet_gateway::{to_value, Error, Gateway, Options, RemoteCode, Value, XSpec}; }
    /// # futures_lite::future::block_on(async {
    /// use execnet::{Group, XSpec};
    ///
    /// let group = Group::new();
    /// let spec: XSpec = "popen//id=parsed".parse()?;
    /// let gw = group.make_gateway_from(spec).await?;
    /// assert_eq!(gw.id(), "parsed");
    /// group.terminate(None).await;
    /// # Ok::<_, execnet::Error>(()) }).unwrap();
    /// ```
    pub async fn make_gateway_from(&self, mut spec: XSpec) -> Result<Gateway> {
        spec.check_keys()?;
        let (id, seq) = self.reserve_id(&spec)?;
        if spec.id().is_none() {
            // Say the id in the spec too, as execnet does; "gwN" always fits.
            let _ = spec.set_id(&id);
        }
        let opened = match self.route(&spec, &id) {
            Ok(route) => self.open(spec, id.clone(), route).await,
            Err(e) => Err(e),
        };
        let mut st = self.lock();
        st.opening.retain(|reserved| *reserved != id);
        let gateway = opened?;
        let at = st.members.partition_point(|m| m.seq < seq);
        st.members.insert(
            at,
            Member {
                seq,
                gateway: gateway.clone(),
            },
        );
        Ok(gateway)
    }

    /// Pick the id and the creation-order number; reserve the id.
    fn reserve_id(&self, spec: &XSpec) -> Result<(String, u64)> {
        let mut st = self.lock();
        st.prune();
        let id = match spec.id() {
            Some(id) => {
                if st.taken(id) {
                    return Err(Error::DuplicateId(id.to_string()));
                }
                id.to_string()
            }
            None => loop {
                let id = format!("gw{}", st.next_auto);
                st.next_auto += 1;
                if !st.taken(&id) {
                    break id;
                }
            },
        };
        let seq = st.next_seq;
        st.next_seq += 1;
        st.opening.push(id.clone());
        Ok((id, seq))
    }

    /// Look up the members that `via=` / `installvia=` name.
    fn route(&self, spec: &XSpec, id: &str) -> Result<Route> {
        let member = |key: &str, target: &str| {
            self.get(target).ok_or_else(|| Error::Bootstrap {
                gateway: id.to_string(),
                step: Step::Route,
                message: format!("{key}={target}: no gateway with that id in this group"),
            })
        };
        if let Some(target) = spec.via() {
            return member("via", target).map(Route::Via);
        }
        if let Some(target) = spec.installvia() {
            return member("installvia", target).map(Route::InstallVia);
        }
        Ok(Route::Direct)
    }

    async fn open(&self, spec: XSpec, id: String, route: Route) -> Result<Gateway> {
        let options = self.options.clone();
        match route {
            Route::Direct => Gateway::open_with_id(spec, id, options).await,
            Route::Via(master) => Gateway::open_via(spec, id, &master, options).await,
            Route::InstallVia(master) if matches!(spec.kind(), Kind::Socket(_)) => {
                Gateway::open_installvia(spec, id, &master, options).await
            }
            Route::InstallVia(_) => Err(Error::Bootstrap {
                gateway: id.clone(),
                step: Step::Route,
                message: "installvia= needs a socket= spec".to_string(),
            }),
        }
    }

    /// The member with id `id`, if it is open.
    ///
    /// # Examples
    ///
    /// ```
    /// # mod execnet { pub use execnet_multichannel::*; pub use execnet_gateway::{to_value, Error, Gateway, Options, RemoteCode, Value, XSpec}; }
    /// # futures_lite::future::block_on(async {
    /// let group = execnet::Group::new();
    /// group.make_gateway("popen//id=db").await?;
    /// assert!(group.get("db").is_some());
    /// assert!(group.get("web").is_none());
    /// group.terminate(None).await;
    /// assert!(group.get("db").is_none()); // exited gateways leave
    /// # Ok::<_, execnet::Error>(()) }).unwrap();
    /// ```
    pub fn get(&self, id: &str) -> Option<Gateway> {
        let mut st = self.lock();
        st.prune();
        st.members
            .iter()
            .find(|m| m.gateway.id() == id)
            .map(|m| m.gateway.clone())
    }

    /// The open members, in creation order (the order of the
    /// `make_gateway` calls, also when they opened concurrently).
    ///
    /// # Examples
    ///
    /// ```
    /// # mod execnet { pub use execnet_multichannel::*; pub use execnet_gateway::{to_value, Error, Gateway, Options, RemoteCode, Value, XSpec}; }
    /// # futures_lite::future::block_on(async {
    /// let group = execnet::Group::new();
    /// for name in ["a", "b", "c"] {
    ///     group.make_gateway(&format!("popen//id={name}")).await?;
    /// }
    /// let ids: Vec<String> = group.gateways().iter().map(|g| g.id().to_string()).collect();
    /// assert_eq!(ids, ["a", "b", "c"]);
    /// group.terminate(None).await;
    /// # Ok::<_, execnet::Error>(()) }).unwrap();
    /// ```
    pub fn gateways(&self) -> Vec<Gateway> {
        let mut st = self.lock();
        st.prune();
        st.members.iter().map(|m| m.gateway.clone()).collect()
    }

    /// How many members are open (gateways that exited or died have left).
    ///
    /// # Examples
    ///
    /// ```
    /// # mod execnet { pub use execnet_multichannel::*; pub use execnet_gateway::{to_value, Error, Gateway, Options, RemoteCode, Value, XSpec}; }
    /// # futures_lite::future::block_on(async {
    /// let group = execnet::Group::new();
    /// let gw = group.make_gateway("popen").await?;
    /// assert_eq!(group.len(), 1);
    /// gw.exit().await?; // leaves the group
    /// assert_eq!(group.len(), 0);
    /// # Ok::<_, execnet::Error>(()) }).unwrap();
    /// ```
    pub fn len(&self) -> usize {
        let mut st = self.lock();
        st.prune();
        st.members.len()
    }

    /// Whether no member is open.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Run `source` on every member; the channels are in creation order.
    ///
    /// # Examples
    ///
    /// ```
    /// # mod execnet { pub use execnet_multichannel::*; pub use execnet_gateway::{to_value, Error, Gateway, Options, RemoteCode, Value, XSpec}; }
    /// # futures_lite::future::block_on(async {
    /// let group = execnet::Group::new();
    /// group.make_gateway("popen").await?;
    /// group.make_gateway("popen").await?;
    /// let mch = group.remote_exec("import os; channel.send(os.getpid())").await?;
    /// let pids: Vec<u32> = mch.receive_each().await?;
    /// assert_eq!(pids.len(), 2);
    /// assert_ne!(pids[0], pids[1]);
    /// group.terminate(None).await;
    /// # Ok::<_, execnet::Error>(()) }).unwrap();
    /// ```
    pub async fn remote_exec(&self, source: &str) -> Result<MultiChannel> {
        let mut channels = Vec::new();
        for gateway in self.gateways() {
            channels.push(gateway.remote_exec(source).await?);
        }
        Ok(MultiChannel::new(channels))
    }

    /// Run [`RemoteCode`] (a file name, a function call with kwargs) on
    /// every member; the channels are in creation order.
    ///
    /// # Examples
    ///
    /// ```
    /// # mod execnet { pub use execnet_multichannel::*; pub use execnet_gateway::{to_value, Error, Gateway, Options, RemoteCode, Value, XSpec}; }
    /// # futures_lite::future::block_on(async {
    /// use execnet::{to_value, Group, RemoteCode};
    ///
    /// let group = Group::new();
    /// group.make_gateway("popen").await?;
    /// let code = RemoteCode::new("def add(channel, a, b):\n    channel.send(a + b)\n")
    ///     .call("add", [("a", to_value(&1).unwrap()), ("b", to_value(&2).unwrap())]);
    /// let mch = group.remote_exec_code(code).await?;
    /// assert_eq!(mch.receive_each::<i64>().await?, [3]);
    /// group.terminate(None).await;
    /// # Ok::<_, execnet::Error>(()) }).unwrap();
    /// ```
    pub async fn remote_exec_code(&self, code: impl Into<RemoteCode>) -> Result<MultiChannel> {
        let code = code.into();
        let mut channels = Vec::new();
        for gateway in self.gateways() {
            channels.push(gateway.remote_exec_code(code.clone()).await?);
        }
        Ok(MultiChannel::new(channels))
    }

    /// Exit every member in parallel, kill what has not stopped within
    /// `timeout` (`None`: the group's `Options::exit_timeout`), and reap
    /// everything. Returns when no process of the group is left, in about
    /// `timeout` plus a kill grace of at most `min(timeout, 1s)`; it never
    /// hangs past ~2 × `timeout`, whatever the remote code does (busy loops,
    /// SIGTERM ignored). Afterwards the group is empty; it can open new
    /// gateways. Gateways still opening when it is called are not waited for.
    ///
    /// # Examples
    ///
    /// ```
    /// # mod execnet { pub use execnet_multichannel::*; pub use execnet_gateway::{to_value, Error, Gateway, Options, RemoteCode, Value, XSpec}; }
    /// # futures_lite::future::block_on(async {
    /// use std::time::Duration;
    ///
    /// let group = execnet::Group::new();
    /// let gw = group.make_gateway("popen").await?;
    /// // Code that never returns is killed after the timeout.
    /// gw.remote_exec("import time\nwhile True: time.sleep(1)").await?;
    /// group.terminate(Some(Duration::from_millis(200))).await;
    /// assert!(group.is_empty() && gw.is_closed());
    /// # Ok::<_, execnet::Error>(()) }).unwrap();
    /// ```
    pub async fn terminate(&self, timeout: Option<Duration>) {
        let timeout = timeout.unwrap_or(self.options.exit_timeout);
        let members = std::mem::take(&mut self.lock().members);
        let gateways: Vec<Gateway> = members.into_iter().map(|m| m.gateway).collect();
        terminate_all(gateways, timeout).await;
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        // Every update of the state completes before anything can panic.
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

impl State {
    /// Gateways that exited or died leave the group.
    fn prune(&mut self) {
        self.members.retain(|m| !m.gateway.is_closed());
    }

    fn taken(&self, id: &str) -> bool {
        self.opening.iter().any(|reserved| reserved == id)
            || self.members.iter().any(|m| m.gateway.id() == id)
    }
}

/// Exit `gateways` in parallel; each exit waits `timeout`, then SIGTERM, a
/// grace of `min(timeout, 1s)`, then SIGKILL and reaping. The outer bound is
/// a safety net should reaping itself stall (a process stuck in the kernel).
//
// With `via=` gateways, the ones routed through a member must go before that
// member (execnet exits them first); add that ordering when routes exist.
async fn terminate_all(gateways: Vec<Gateway>, timeout: Duration) {
    if gateways.is_empty() {
        return;
    }
    let exits = futures_util::future::join_all(
        gateways
            .iter()
            .map(|gateway| async move { gateway.exit_timeout(timeout).await }),
    );
    let bound = timeout * 2 + Duration::from_secs(2);
    futures_lite::future::or(
        async {
            exits.await;
        },
        async {
            async_io::Timer::after(bound).await;
        },
    )
    .await;
}
