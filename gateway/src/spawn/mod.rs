//! Gateways forked from a warm spawner: one interpreter start (and, for
//! `ssh=`, one connection and one login) per *place*, every further gateway
//! to that place a fork of it.
//!
//! A place is where and how an interpreter starts ([`place_of`]): the
//! transport's destination (popen with our current directory and
//! environment as they are at the open; the ssh arguments and ssh_config;
//! the socket address and token), the interpreter (`python=`) and the
//! environment variables that shape its start (`env:PYTHON*`). Everything
//! else in a spec (chdir, nice, the other `env:`, execmodel, id,
//! dont_write_bytecode) travels in the gateway's own Hello, which the forked
//! worker reads and applies like a directly started one.
//!
//! The spawner (`gateway/worker/spawner.py`) is a single-threaded Python
//! loop with the worker compiled and loaded. Locally each fork gets three
//! pipes whose far ends we pass over a unix socket (SCM_RIGHTS), so its
//! stream is as direct as a popen gateway's; remotely the forks' streams are
//! multiplexed over the spawner's one stream ([`spawner`]). The spawner
//! lives while gateways to its place exist plus a linger, exits when its
//! control stream ends (also when this process dies), and is replaced when
//! it died.

mod fdpass;
mod forked;
mod outbox;
mod spawner;

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use execnet_transport::Step;
use execnet_xspec::{Kind, XSpec};

use crate::error::{Error, Result};
use crate::gateway::{Gateway, Options};
use crate::open::{bootstrap, Ship};
use spawner::{ForkError, Spawner};

/// Where and how an interpreter starts: gateways with the same place share a
/// spawner.
#[derive(Clone, Debug)]
pub(crate) struct Place {
    /// Everything that identifies the place, as one string.
    key: String,
    /// `env:PYTHON*` of the spec: the spawner's environment from its start.
    env: Vec<(String, String)>,
}

/// The place of a spec, or `None` for the direct path: `spawn=direct`,
/// `via=`/`installvia=` (opened elsewhere), and `socket=` with `env:PYTHON*`
/// (a socket server starts the interpreter with its own environment).
/// A `socket=` place includes whether a server without a token is accepted
/// (`insecure_no_auth`), so that a gateway without it never forks from a
/// spawner that one with it reached.
pub(crate) fn place_of(spec: &XSpec, _id: &str, options: &Options) -> Result<Option<Place>> {
    if !spec.spawn_fork() || spec.via().is_some() || spec.installvia().is_some() {
        return Ok(None);
    }
    let env = python_env(spec);
    let python = crate::bootstrap::python_command(spec).join(" ");
    let dest = match spec.kind() {
        // A popen worker is this process's child: it starts in our current
        // directory with our environment as they are now, so a spawner that
        // started under others is another place (pytest-xdist's own tests
        // chdir and set variables between gateways).
        Kind::Popen => format!("popen\0{}", local_context()),
        Kind::Ssh(args) => format!(
            "ssh\0{}\0{}",
            args.split_whitespace().collect::<Vec<_>>().join(" "),
            spec.ssh_config().unwrap_or("")
        ),
        // (the directory too: a relative token_file= is read from it)
        Kind::Socket(addr) if env.is_empty() => format!(
            "socket\0{addr}\0{}\0{}\0{}\0{}",
            std::env::current_dir().unwrap_or_default().display(),
            spec.token_file().unwrap_or(""),
            std::env::var("EXECNET_TOKEN").unwrap_or_default(),
            spec.insecure_no_auth() || options.insecure_no_auth
        ),
        _ => return Ok(None),
    };
    Ok(Some(Place::new(&dest, &python, env)))
}

/// The place of a `via=` popen spec opened through `via` (None for
/// `spawn=direct`): a spawner started by `via`'s worker, its forks' streams
/// multiplexed over one relay channel of `via`. One per via gateway (by its
/// serial, never reused) and interpreter; it ends with that gateway.
pub(crate) fn place_of_via(spec: &XSpec, via: &Gateway) -> Option<Place> {
    if !spec.spawn_fork() {
        return None;
    }
    // (no python=: the via worker's own interpreter)
    let python = spec
        .python()
        .map(|_| crate::bootstrap::python_command(spec).join(" "))
        .unwrap_or_default();
    let dest = format!("via\0{}", via.inner.serial);
    Some(Place::new(&dest, &python, python_env(spec)))
}

/// The spec's `env:PYTHON*` settings: they shape the interpreter's start.
fn python_env(spec: &XSpec) -> Vec<(String, String)> {
    spec.env()
        .filter(|(k, _)| k.starts_with("PYTHON"))
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

impl Place {
    /// The place at `dest` (what identifies the transport's destination)
    /// for interpreter `python` started with `env`.
    fn new(dest: &str, python: &str, env: Vec<(String, String)>) -> Place {
        let env_key: Vec<String> = env.iter().map(|(k, v)| format!("{k}={v}")).collect();
        Place {
            key: format!("{dest}\0{python}\0{}", env_key.join("\0")),
            env,
        }
    }
}

/// This process's current directory and (a digest of) its environment, as
/// they are now: what a child started now inherits.
fn local_context() -> String {
    use std::hash::{Hash, Hasher};
    let mut vars: Vec<_> = std::env::vars_os().collect();
    vars.sort();
    let mut h = std::collections::hash_map::DefaultHasher::new();
    vars.hash(&mut h);
    format!(
        "{}\0{:016x}",
        std::env::current_dir().unwrap_or_default().display(),
        h.finish()
    )
}

/// The spawner of each place, once started.
static PLACES: Mutex<Option<HashMap<String, Arc<Slot>>>> = Mutex::new(None);

/// One place's spawner, and who is starting it.
#[derive(Default)]
struct Slot {
    current: async_lock::Mutex<SlotState>,
    /// Start attempts so far (the number of the latest).
    attempts: AtomicU64,
}

#[derive(Default)]
struct SlotState {
    spawner: Option<Arc<Spawner>>,
    /// The latest failed start: its attempt number and the error's step
    /// and message, shared with those who waited for that attempt.
    failure: Option<(u64, Step, String)>,
}

fn slot(key: &str) -> Arc<Slot> {
    let mut places = PLACES.lock().unwrap_or_else(PoisonError::into_inner);
    places
        .get_or_insert_with(HashMap::new)
        .entry(key.to_string())
        .or_default()
        .clone()
}

/// Forget `spawner` as its place's spawner (it lingered out or died), unless
/// an opener is busy with the place right now (it will see the spawner gone).
pub(crate) fn forget(key: &str, spawner: &Arc<Spawner>) {
    let slot = {
        let places = PLACES.lock().unwrap_or_else(PoisonError::into_inner);
        match places.as_ref().and_then(|p| p.get(key)) {
            Some(slot) => slot.clone(),
            None => return,
        }
    };
    if let Some(mut state) = slot.current.try_lock() {
        if state
            .spawner
            .as_ref()
            .is_some_and(|s| Arc::ptr_eq(s, spawner))
        {
            state.spawner = None;
        }
    };
}

/// Open a gateway at `place`: a fork of the place's spawner, which is started
/// first if there is none (or it died).
pub(crate) async fn open(
    place: Place,
    spec: XSpec,
    id: String,
    options: Options,
    via: Option<&Gateway>,
) -> Result<Gateway> {
    let linger = spec.spawn_linger().unwrap_or(options.spawn_linger);
    let slot = slot(&place.key);
    // A spawner can die between our look and our fork: start a new one once.
    for round in 0..2 {
        let spawner = spawner_of(&slot, &place, &spec, &id, &options, linger, via).await?;
        match spawner.fork(&id, options.bootstrap_timeout).await {
            Ok(conn) => {
                return bootstrap(conn, spec, id, options, Ship::Running, None).await;
            }
            Err(ForkError::Gone) if round == 0 => {
                let mut state = slot.current.lock().await;
                if state
                    .spawner
                    .as_ref()
                    .is_some_and(|s| Arc::ptr_eq(s, &spawner))
                {
                    state.spawner = None;
                }
            }
            Err(e) => return Err(e.into_error(&id)),
        }
    }
    Err(ForkError::Gone.into_error(&id))
}

/// The place's running spawner, started now if there is none.
async fn spawner_of(
    slot: &Slot,
    place: &Place,
    spec: &XSpec,
    id: &str,
    options: &Options,
    linger: Duration,
    via: Option<&Gateway>,
) -> Result<Arc<Spawner>> {
    let seen = slot.attempts.load(Ordering::SeqCst);
    let mut state = slot.current.lock().await;
    if let Some(spawner) = &state.spawner {
        if spawner.usable() {
            spawner.set_linger(linger);
            return Ok(spawner.clone());
        }
        state.spawner = None;
    }
    // Openers that queued behind a start that failed get its error, not
    // a start of their own each (8 refused ssh logins in a row).
    if let Some((attempt, step, message)) = &state.failure {
        if *attempt > seen {
            return Err(Error::Bootstrap {
                gateway: id.to_string(),
                step: *step,
                message: message.clone(),
            });
        }
    }
    let attempt = slot.attempts.fetch_add(1, Ordering::SeqCst) + 1;
    match Spawner::start(place, spec, id, options, linger, via).await {
        Ok(spawner) => {
            state.failure = None;
            state.spawner = Some(spawner.clone());
            Ok(spawner)
        }
        Err(e) => {
            if let Error::Bootstrap { step, message, .. } = &e {
                state.failure = Some((attempt, *step, message.clone()));
            }
            Err(e)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(spec: &str) -> Option<String> {
        key_with(spec, &Options::default())
    }

    fn key_with(spec: &str, options: &Options) -> Option<String> {
        let spec = XSpec::parse(spec).expect("valid spec");
        place_of(&spec, "t", options)
            .expect("a place or none")
            .map(|p| p.key)
    }

    #[test]
    fn per_gateway_keys_share_a_place() {
        let base = key("popen").expect("popen forks");
        for spec in [
            "popen//chdir=/tmp//nice=3//id=x",
            "popen//env:FOO=1//execmodel=main_thread_only",
            "popen//dont_write_bytecode",
        ] {
            assert_eq!(key(spec).as_deref(), Some(base.as_str()), "{spec}");
        }
    }

    #[test]
    fn interpreter_keys_make_another_place() {
        let base = key("popen").expect("popen forks");
        for spec in [
            "popen//python=python3.99",
            "popen//env:PYTHONHASHSEED=0",
            "popen//env:PYTHONPATH=/x",
        ] {
            assert_ne!(key(spec).as_deref(), Some(base.as_str()), "{spec}");
        }
        assert_ne!(key("ssh=a"), key("ssh=b"));
        assert_ne!(key("ssh=-p 22 a"), key("ssh=-p 23 a"));
        assert_ne!(key("ssh=a"), key("ssh=a//ssh_config=/x"));
        assert_eq!(key("ssh=a//chdir=x"), key("ssh=a//id=y"));
    }

    #[test]
    fn direct_path() {
        assert_eq!(key("popen//spawn=direct"), None);
        assert_eq!(key("popen//via=master"), None);
        assert_eq!(key("socket=127.0.0.1:1//installvia=master"), None);
        assert_eq!(key("socket=127.0.0.1:1//env:PYTHONPATH=/x"), None);
        assert!(key("socket=127.0.0.1:1").is_some());
        // Accepting a server without a token is another place: a gateway
        // that does not accept one never forks from that spawner.
        let insecure = key("socket=127.0.0.1:1//insecure_no_auth");
        assert_ne!(insecure, key("socket=127.0.0.1:1"));
        let by_options = key_with(
            "socket=127.0.0.1:1",
            &Options::default().insecure_no_auth(true),
        );
        assert_eq!(by_options, insecure);
        assert!(key("popen//spawn=fork").is_some());
    }
}
