//! [`XSpec`]: the parsed spec string.

use std::fmt;
use std::str::FromStr;

use crate::ParseError;

/// The separator between parts of a spec string.
const SEP: &str = "//";

/// The environment-variable key prefix (`env:NAME=value`).
const ENV_PREFIX: &str = "env:";

/// The transport a spec asks for: exactly one per spec.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Default)]
#[non_exhaustive]
pub enum Kind {
    /// A local subprocess (`popen`, also the default when no transport is
    /// named).
    #[default]
    Popen,
    /// A remote interpreter started through the system `ssh` client; the
    /// string holds the ssh arguments (`ssh=-p 2222 host` gives
    /// `"-p 2222 host"`).
    Ssh(String),
    /// A connection to a socket server; the string is `HOST:PORT`.
    Socket(String),
}

/// One `key` or `key=value` part, kept as written.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
struct Part {
    key: String,
    /// `None` for a bare key (which means true).
    value: Option<String>,
}

impl Part {
    fn new(key: &str, value: Option<&str>) -> Self {
        Part {
            key: key.to_owned(),
            value: value.map(str::to_owned),
        }
    }

    fn value_str(&self) -> &str {
        self.value.as_deref().unwrap_or("")
    }
}

impl fmt::Display for Part {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.value {
            Some(value) => write!(f, "{}={}", self.key, value),
            None => f.write_str(&self.key),
        }
    }
}

/// A gateway specification such as `ssh=host//python=python3//chdir=work`.
///
/// A spec is a list of parts joined by `//`. Each part is `key=value` (split
/// at the *first* `=`) or a bare `key`, which means true. Exactly one part
/// names the transport: `popen`, `ssh=ARGS` or `socket=HOST:PORT`; without
/// one the spec means `popen`.
///
/// Known keys: `popen`, `ssh`, `socket`, `via`, `installvia` (socket only),
/// `python`, `chdir`, `nice` (an integer), `env:NAME`, `dont_write_bytecode`,
/// `execmodel` (`thread` or `main_thread_only`), `id`, `ssh_config`,
/// `token_file`. Other keys are kept, in order, and readable with
/// [`get`](XSpec::get); opening a gateway refuses them (see
/// [`check_keys`](XSpec::check_keys)) unless they start with `x-`.
///
/// The parts are kept as written, so [`Display`](fmt::Display) gives back
/// the parsed string and `XSpec::parse(&spec.to_string()) == Ok(spec)`.
/// Two specs are equal when their parts are equal, in order.
///
/// # Examples
///
/// ```
/// use execnet_xspec::{Kind, XSpec};
///
/// let spec: XSpec = "ssh=-p 2222 host//python=python3//env:FOO=a=b".parse()?;
/// assert_eq!(spec.kind(), &Kind::Ssh("-p 2222 host".into()));
/// assert_eq!(spec.python(), Some("python3"));
/// assert_eq!(spec.get("env:FOO"), Some("a=b"));
/// assert_eq!(spec.to_string(), "ssh=-p 2222 host//python=python3//env:FOO=a=b");
/// # Ok::<(), execnet_xspec::ParseError>(())
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct XSpec {
    /// Never empty: `parse` rejects the empty spec and the setters keep at
    /// least one part.
    parts: Vec<Part>,
    /// Derived from `parts`; cached so that `kind()` can hand out a
    /// reference.
    kind: Kind,
}

impl XSpec {
    /// Parses a spec string.
    ///
    /// # Errors
    ///
    /// A [`ParseError`] naming the offending part: an empty spec or part
    /// (`popen////id=x`), an empty key (`=x`), a key starting with `_`, a
    /// duplicate key, two transports (`popen//ssh=h`), an empty `ssh=` or
    /// `socket=` value, a socket address without a numeric `:PORT`,
    /// `nice=` that is not an integer, an unknown `execmodel=`, or
    /// `installvia=` without `socket=`.
    ///
    /// # Examples
    ///
    /// ```
    /// use execnet_xspec::{Kind, XSpec};
    ///
    /// let spec = XSpec::parse("popen//python=python3.12//nice=5//id=w1")?;
    /// assert_eq!(spec.kind(), &Kind::Popen);
    /// assert_eq!(spec.python(), Some("python3.12"));
    /// assert_eq!(spec.nice(), Some(5));
    /// assert_eq!(spec.id(), Some("w1"));
    ///
    /// // No transport part means popen.
    /// assert_eq!(XSpec::parse("chdir=/tmp")?.kind(), &Kind::Popen);
    ///
    /// let err = XSpec::parse("popen//ssh=host").unwrap_err();
    /// assert!(err.to_string().contains("ssh=host"));
    /// assert!(XSpec::parse("nice=abc").is_err());
    /// # Ok::<(), execnet_xspec::ParseError>(())
    /// ```
    pub fn parse(spec: &str) -> Result<XSpec, ParseError> {
        if spec.is_empty() {
            return Err(ParseError::EmptySpec);
        }
        let mut parts = Vec::new();
        for (index, raw) in spec.split(SEP).enumerate() {
            if raw.is_empty() {
                return Err(ParseError::EmptyPart {
                    spec: spec.to_owned(),
                    index: index + 1,
                });
            }
            let part = match raw.split_once('=') {
                Some((key, value)) => Part::new(key, Some(value)),
                None => Part::new(raw, None),
            };
            parts.push(part);
        }
        Self::from_parts(parts)
    }

    /// Validates parts (whatever their origin) and derives the kind.
    fn from_parts(parts: Vec<Part>) -> Result<XSpec, ParseError> {
        let mut transport: Option<(usize, Kind)> = None;
        for (index, part) in parts.iter().enumerate() {
            let part_text = || part.to_string();
            let key = part.key.as_str();
            if key.is_empty() {
                return Err(ParseError::EmptyKey { part: part_text() });
            }
            if key.starts_with('_') {
                return Err(ParseError::ReservedKey { part: part_text() });
            }
            if parts[..index].iter().any(|earlier| earlier.key == key) {
                return Err(ParseError::DuplicateKey {
                    part: part_text(),
                    key: key.to_owned(),
                });
            }
            let kind = match key {
                "popen" => Some(Kind::Popen),
                "ssh" => Some(Kind::Ssh(transport_value(part)?)),
                "socket" => {
                    let address = transport_value(part)?;
                    check_socket_address(&address).map_err(|reason| {
                        ParseError::BadSocketAddress {
                            part: part_text(),
                            reason,
                        }
                    })?;
                    Some(Kind::Socket(address))
                }
                "nice" => {
                    if part.value_str().parse::<i32>().is_err() {
                        return Err(ParseError::BadNice { part: part_text() });
                    }
                    None
                }
                "python" => {
                    // (an empty one means the default interpreter)
                    if let Err(reason) = crate::words::split_command(part.value_str()) {
                        return Err(ParseError::BadPython {
                            part: part_text(),
                            reason,
                        });
                    }
                    None
                }
                "spawn" => {
                    if !matches!(part.value_str(), "fork" | "direct") {
                        return Err(ParseError::BadSpawn { part: part_text() });
                    }
                    None
                }
                "spawn_linger" => {
                    if parse_seconds(part.value_str()).is_none() {
                        return Err(ParseError::BadSpawnLinger { part: part_text() });
                    }
                    None
                }
                "execmodel" => {
                    if !matches!(part.value_str(), "thread" | "main_thread_only") {
                        return Err(ParseError::BadExecmodel { part: part_text() });
                    }
                    None
                }
                ENV_PREFIX => {
                    return Err(ParseError::EmptyEnvName { part: part_text() });
                }
                "insecure_no_auth" => {
                    if flag(part.value.as_deref()).is_none() {
                        return Err(ParseError::BadFlag {
                            part: part_text(),
                            key: "insecure_no_auth",
                        });
                    }
                    None
                }
                "id" | "via" | "installvia" => {
                    let value = part.value_str();
                    let reason = if value.is_empty() {
                        Some("a gateway id cannot be empty")
                    } else if value.chars().any(char::is_control) {
                        Some("a gateway id cannot contain a newline or other control character")
                    } else {
                        None
                    };
                    if let Some(reason) = reason {
                        return Err(ParseError::BadId {
                            part: part_text(),
                            reason,
                        });
                    }
                    None
                }
                _ => None,
            };
            if let Some(kind) = kind {
                if let Some((first, _)) = &transport {
                    return Err(ParseError::TwoTransports {
                        part: part_text(),
                        first: parts[*first].to_string(),
                    });
                }
                transport = Some((index, kind));
            }
        }
        let kind = transport.map(|(_, kind)| kind).unwrap_or_default();
        if !matches!(kind, Kind::Socket(_)) {
            if let Some(part) = parts.iter().find(|part| part.key == "installvia") {
                return Err(ParseError::InstallviaWithoutSocket {
                    part: part.to_string(),
                });
            }
        }
        Ok(XSpec { parts, kind })
    }

    /// The transport: [`Kind::Popen`] (also when none is named),
    /// [`Kind::Ssh`] or [`Kind::Socket`].
    ///
    /// # Examples
    ///
    /// ```
    /// use execnet_xspec::{Kind, XSpec};
    ///
    /// let spec = XSpec::parse("socket=127.0.0.1:8888//id=s")?;
    /// assert_eq!(spec.kind(), &Kind::Socket("127.0.0.1:8888".into()));
    /// # Ok::<(), execnet_xspec::ParseError>(())
    /// ```
    pub fn kind(&self) -> &Kind {
        &self.kind
    }

    /// The value of any key, known or not: `key=value` reads as `value`, a
    /// bare `key` as `""`, an absent key as `None`.
    ///
    /// # Examples
    ///
    /// ```
    /// use execnet_xspec::XSpec;
    ///
    /// let spec = XSpec::parse("ssh=host//env:FOO=a=b//custom=1//flag")?;
    /// assert_eq!(spec.get("ssh"), Some("host"));
    /// assert_eq!(spec.get("env:FOO"), Some("a=b"));
    /// assert_eq!(spec.get("custom"), Some("1"));
    /// assert_eq!(spec.get("flag"), Some(""));
    /// assert_eq!(spec.get("python"), None);
    /// # Ok::<(), execnet_xspec::ParseError>(())
    /// ```
    pub fn get(&self, key: &str) -> Option<&str> {
        self.parts
            .iter()
            .find(|part| part.key == key)
            .map(Part::value_str)
    }

    /// All parts in order, as `(key, value)`; `value` is `None` for a bare
    /// key.
    ///
    /// # Examples
    ///
    /// ```
    /// use execnet_xspec::XSpec;
    ///
    /// let spec = XSpec::parse("popen//dont_write_bytecode//id=a")?;
    /// let parts: Vec<_> = spec.parts().collect();
    /// assert_eq!(
    ///     parts,
    ///     [("popen", None), ("dont_write_bytecode", None), ("id", Some("a"))]
    /// );
    /// # Ok::<(), execnet_xspec::ParseError>(())
    /// ```
    pub fn parts(&self) -> impl Iterator<Item = (&str, Option<&str>)> {
        self.parts
            .iter()
            .map(|part| (part.key.as_str(), part.value.as_deref()))
    }

    /// The Python interpreter command (`python=python3`).
    ///
    /// # Examples
    ///
    /// ```
    /// use execnet_xspec::XSpec;
    ///
    /// assert_eq!(XSpec::parse("popen//python=pypy3")?.python(), Some("pypy3"));
    /// assert_eq!(XSpec::parse("popen")?.python(), None);
    /// # Ok::<(), execnet_xspec::ParseError>(())
    /// ```
    pub fn python(&self) -> Option<&str> {
        self.get("python")
    }

    /// The directory the worker changes to (`chdir=work`).
    ///
    /// # Examples
    ///
    /// ```
    /// use execnet_xspec::XSpec;
    ///
    /// assert_eq!(XSpec::parse("ssh=h//chdir=work")?.chdir(), Some("work"));
    /// # Ok::<(), execnet_xspec::ParseError>(())
    /// ```
    pub fn chdir(&self) -> Option<&str> {
        self.get("chdir")
    }

    /// The gateway id (`id=gw0`).
    ///
    /// # Examples
    ///
    /// ```
    /// use execnet_xspec::XSpec;
    ///
    /// assert_eq!(XSpec::parse("popen//id=gw7")?.id(), Some("gw7"));
    /// # Ok::<(), execnet_xspec::ParseError>(())
    /// ```
    pub fn id(&self) -> Option<&str> {
        self.get("id")
    }

    /// The id of the gateway through which this one is opened
    /// (`via=gw0`).
    ///
    /// # Examples
    ///
    /// ```
    /// use execnet_xspec::XSpec;
    ///
    /// assert_eq!(XSpec::parse("popen//via=gw0")?.via(), Some("gw0"));
    /// # Ok::<(), execnet_xspec::ParseError>(())
    /// ```
    pub fn via(&self) -> Option<&str> {
        self.get("via")
    }

    /// The id of the gateway on which to start a socket server before
    /// connecting (`installvia=gw0`; socket specs only).
    ///
    /// # Examples
    ///
    /// ```
    /// use execnet_xspec::XSpec;
    ///
    /// let spec = XSpec::parse("socket=10.0.0.5:8888//installvia=gw0")?;
    /// assert_eq!(spec.installvia(), Some("gw0"));
    /// assert!(XSpec::parse("popen//installvia=gw0").is_err());
    /// # Ok::<(), execnet_xspec::ParseError>(())
    /// ```
    pub fn installvia(&self) -> Option<&str> {
        self.get("installvia")
    }

    /// The ssh config file given to `ssh -F` (`ssh_config=FILE`).
    ///
    /// # Examples
    ///
    /// ```
    /// use execnet_xspec::XSpec;
    ///
    /// let spec = XSpec::parse("ssh=h//ssh_config=cfg")?;
    /// assert_eq!(spec.ssh_config(), Some("cfg"));
    /// # Ok::<(), execnet_xspec::ParseError>(())
    /// ```
    pub fn ssh_config(&self) -> Option<&str> {
        self.get("ssh_config")
    }

    /// The execution model of the worker: `thread` or `main_thread_only`
    /// (the parser rejects anything else).
    ///
    /// # Examples
    ///
    /// ```
    /// use execnet_xspec::XSpec;
    ///
    /// let spec = XSpec::parse("popen//execmodel=main_thread_only")?;
    /// assert_eq!(spec.execmodel(), Some("main_thread_only"));
    /// assert!(XSpec::parse("popen//execmodel=eventlet").is_err());
    /// # Ok::<(), execnet_xspec::ParseError>(())
    /// ```
    pub fn execmodel(&self) -> Option<&str> {
        self.get("execmodel")
    }

    /// The file holding the socket server's token (`token_file=FILE`).
    ///
    /// # Examples
    ///
    /// ```
    /// use execnet_xspec::XSpec;
    ///
    /// let spec = XSpec::parse("socket=h:1//token_file=/run/tok")?;
    /// assert_eq!(spec.token_file(), Some("/run/tok"));
    /// # Ok::<(), execnet_xspec::ParseError>(())
    /// ```
    pub fn token_file(&self) -> Option<&str> {
        self.get("token_file")
    }

    /// Whether the spec opts in to a socket server that requires no token
    /// (`insecure_no_auth`, or `insecure_no_auth=yes`; `=no` says no).
    /// Without it, a `socket=` gateway refuses a server whose hello says it
    /// authenticates nobody: such a server proves nothing, so it may be an
    /// impostor that would run, or read, the code we send.
    ///
    /// # Examples
    ///
    /// ```
    /// use execnet_xspec::XSpec;
    ///
    /// assert!(XSpec::parse("socket=h:1//insecure_no_auth")?.insecure_no_auth());
    /// assert!(!XSpec::parse("socket=h:1//insecure_no_auth=no")?.insecure_no_auth());
    /// assert!(!XSpec::parse("socket=h:1")?.insecure_no_auth());
    /// assert!(XSpec::parse("socket=h:1//insecure_no_auth=maybe").is_err());
    /// # Ok::<(), execnet_xspec::ParseError>(())
    /// ```
    pub fn insecure_no_auth(&self) -> bool {
        self.parts
            .iter()
            .find(|part| part.key == "insecure_no_auth")
            .and_then(|part| flag(part.value.as_deref()))
            .unwrap_or(false)
    }

    /// The niceness increment for the worker (`nice=5`).
    ///
    /// # Examples
    ///
    /// ```
    /// use execnet_xspec::XSpec;
    ///
    /// assert_eq!(XSpec::parse("popen//nice=-3")?.nice(), Some(-3));
    /// assert_eq!(XSpec::parse("popen")?.nice(), None);
    /// # Ok::<(), execnet_xspec::ParseError>(())
    /// ```
    pub fn nice(&self) -> Option<i32> {
        // The parser checked the value, so `ok()` only maps absence.
        self.get("nice").and_then(|value| value.parse().ok())
    }

    /// Whether the gateway is a fork of its place's warm spawner (`spawn=fork`,
    /// the default) rather than an interpreter started for it alone
    /// (`spawn=direct`).
    ///
    /// # Examples
    ///
    /// ```
    /// use execnet_xspec::XSpec;
    ///
    /// assert!(XSpec::parse("popen")?.spawn_fork());
    /// assert!(!XSpec::parse("popen//spawn=direct")?.spawn_fork());
    /// assert!(XSpec::parse("popen//spawn=sometimes").is_err());
    /// # Ok::<(), execnet_xspec::ParseError>(())
    /// ```
    pub fn spawn_fork(&self) -> bool {
        self.get("spawn") != Some("direct")
    }

    /// `spawn_linger=SECONDS`: how long the place's spawner stays up after
    /// its last gateway ended.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::time::Duration;
    /// use execnet_xspec::XSpec;
    ///
    /// let spec = XSpec::parse("ssh=host//spawn_linger=0.5")?;
    /// assert_eq!(spec.spawn_linger(), Some(Duration::from_millis(500)));
    /// assert!(XSpec::parse("popen//spawn_linger=-1").is_err());
    /// # Ok::<(), execnet_xspec::ParseError>(())
    /// ```
    pub fn spawn_linger(&self) -> Option<std::time::Duration> {
        self.get("spawn_linger").and_then(parse_seconds)
    }

    /// Whether the worker runs with `PYTHONDONTWRITEBYTECODE`: true when the
    /// key `dont_write_bytecode` is present (with any value, as in execnet).
    ///
    /// # Examples
    ///
    /// ```
    /// use execnet_xspec::XSpec;
    ///
    /// assert!(XSpec::parse("popen//dont_write_bytecode")?.dont_write_bytecode());
    /// assert!(!XSpec::parse("popen")?.dont_write_bytecode());
    /// # Ok::<(), execnet_xspec::ParseError>(())
    /// ```
    pub fn dont_write_bytecode(&self) -> bool {
        self.get("dont_write_bytecode").is_some()
    }

    /// The environment variables to set in the worker, as `(NAME, value)`
    /// from the `env:NAME=value` parts, in order (a bare `env:NAME` gives
    /// `""`).
    ///
    /// # Examples
    ///
    /// ```
    /// use execnet_xspec::XSpec;
    ///
    /// let spec = XSpec::parse("popen//env:A=1//id=x//env:B=x=y")?;
    /// let env: Vec<_> = spec.env().collect();
    /// assert_eq!(env, [("A", "1"), ("B", "x=y")]);
    /// # Ok::<(), execnet_xspec::ParseError>(())
    /// ```
    pub fn env(&self) -> impl Iterator<Item = (&str, &str)> {
        self.parts.iter().filter_map(|part| {
            part.key
                .strip_prefix(ENV_PREFIX)
                .map(|name| (name, part.value_str()))
        })
    }

    /// Sets the gateway id, replacing an `id=` part or appending one.
    ///
    /// # Errors
    ///
    /// As [`set`](XSpec::set): an id that no spec string can carry (one
    /// containing `//`); the spec is then unchanged.
    ///
    /// # Examples
    ///
    /// ```
    /// use execnet_xspec::XSpec;
    ///
    /// let mut spec = XSpec::parse("ssh=host//python=python3")?;
    /// spec.set_id("gw0")?;
    /// assert_eq!(spec.to_string(), "ssh=host//python=python3//id=gw0");
    /// spec.set_id("gw1")?;
    /// assert_eq!(spec.to_string(), "ssh=host//python=python3//id=gw1");
    /// # Ok::<(), execnet_xspec::ParseError>(())
    /// ```
    pub fn set_id(&mut self, id: &str) -> Result<(), ParseError> {
        self.set("id", Some(id))
    }

    /// Sets `key` to `value` (`None` writes a bare key, which means true),
    /// replacing the part with that key in place or appending a new one.
    /// The result is checked as [`parse`](XSpec::parse) checks a string,
    /// and must still round-trip through `Display`.
    ///
    /// # Errors
    ///
    /// Whatever [`parse`](XSpec::parse) would reject in the resulting spec
    /// (`set("ssh", ..)` on an explicit `popen` spec gives
    /// [`ParseError::TwoTransports`], `set("nice", Some("x"))` gives
    /// [`ParseError::BadNice`]), plus [`ParseError::Unrepresentable`] for a
    /// key or value containing `//`, or a key containing `=`. On error the
    /// spec is unchanged.
    ///
    /// # Examples
    ///
    /// ```
    /// use execnet_xspec::XSpec;
    ///
    /// let mut spec = XSpec::default();
    /// spec.set("python", Some("python3"))?;
    /// spec.set("dont_write_bytecode", None)?;
    /// assert_eq!(spec.to_string(), "popen//python=python3//dont_write_bytecode");
    /// assert!(spec.set("nice", Some("abc")).is_err());
    /// assert!(spec.set("ssh", Some("host")).is_err());
    /// # Ok::<(), execnet_xspec::ParseError>(())
    /// ```
    pub fn set(&mut self, key: &str, value: Option<&str>) -> Result<(), ParseError> {
        let new = Part::new(key, value);
        if key.contains('=') {
            return Err(ParseError::Unrepresentable {
                part: new.to_string(),
                reason: "a key cannot contain \"=\"",
            });
        }
        let text = new.to_string();
        if text.contains(SEP) {
            return Err(ParseError::Unrepresentable {
                part: text,
                reason: "a part cannot contain \"//\"",
            });
        }
        if text.is_empty() {
            return Err(ParseError::EmptyKey { part: text });
        }
        let mut parts = self.parts.clone();
        if let Some(index) = parts.iter().position(|part| part.key == key) {
            parts[index] = new;
        } else if parts
            .last()
            .is_some_and(|last| last.to_string().ends_with('/'))
        {
            // "chdir=/tmp/" followed by "//" would read as "chdir=/tmp" and
            // a part starting with "/": keep such a part last.
            parts.insert(parts.len() - 1, new);
        } else {
            parts.push(new);
        }
        self.replace_parts(parts)
    }

    /// Replaces the parts after checking them, so that the spec stays valid
    /// and round-trips; on error `self` is unchanged.
    fn replace_parts(&mut self, parts: Vec<Part>) -> Result<(), ParseError> {
        let text = join(&parts);
        let reparsed = XSpec::parse(&text)?;
        if reparsed.parts != parts {
            let part = parts
                .iter()
                .find(|part| part.to_string().ends_with('/'))
                .map_or_else(|| text.clone(), Part::to_string);
            return Err(ParseError::Unrepresentable {
                part,
                reason: "only the last part of a spec can end with \"/\"",
            });
        }
        *self = reparsed;
        Ok(())
    }
}

/// The value of `ssh=` or `socket=`, which must not be blank.
/// A yes/no value: bare or `yes`/`true`/`1`/`on` is yes, `no`/`false`/
/// `0`/`off` is no, anything else `None`.
fn flag(value: Option<&str>) -> Option<bool> {
    match value.map(str::to_ascii_lowercase).as_deref() {
        None | Some("" | "yes" | "true" | "1" | "on") => Some(true),
        Some("no" | "false" | "0" | "off") => Some(false),
        Some(_) => None,
    }
}

fn transport_value(part: &Part) -> Result<String, ParseError> {
    match &part.value {
        Some(value) if !value.trim().is_empty() => Ok(value.clone()),
        _ => Err(ParseError::EmptyTransportValue {
            part: part.to_string(),
            key: part.key.clone(),
        }),
    }
}

/// Checks `HOST:PORT` (the host may be a bracketed IPv6 address, so the
/// port follows the last `:`).
fn check_socket_address(address: &str) -> Result<(), &'static str> {
    let (host, port) = address.rsplit_once(':').ok_or("missing \":PORT\"")?;
    if host.is_empty() {
        return Err("empty host");
    }
    if port.is_empty() || !port.bytes().all(|byte| byte.is_ascii_digit()) {
        return Err("the port is not a number");
    }
    port.parse::<u16>()
        .map(drop)
        .map_err(|_| "the port is out of range 0-65535")
}

fn join(parts: &[Part]) -> String {
    let mut text = String::new();
    for (index, part) in parts.iter().enumerate() {
        if index > 0 {
            text.push_str(SEP);
        }
        text.push_str(&part.to_string());
    }
    text
}

impl Default for XSpec {
    /// The spec `popen`.
    fn default() -> Self {
        XSpec {
            parts: vec![Part::new("popen", None)],
            kind: Kind::Popen,
        }
    }
}

impl fmt::Display for XSpec {
    /// Writes the parts as parsed, joined by `//`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (index, part) in self.parts.iter().enumerate() {
            if index > 0 {
                f.write_str(SEP)?;
            }
            write!(f, "{part}")?;
        }
        Ok(())
    }
}

impl FromStr for XSpec {
    type Err = ParseError;

    fn from_str(spec: &str) -> Result<Self, Self::Err> {
        XSpec::parse(spec)
    }
}

impl TryFrom<&str> for XSpec {
    type Error = ParseError;

    fn try_from(spec: &str) -> Result<Self, Self::Error> {
        XSpec::parse(spec)
    }
}

#[cfg(feature = "serde")]
impl serde::Serialize for XSpec {
    /// Serializes as the spec string.
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

#[cfg(feature = "serde")]
impl<'de> serde::Deserialize<'de> for XSpec {
    /// Deserializes from a spec string, rejecting what `parse` rejects.
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = <std::borrow::Cow<'de, str>>::deserialize(deserializer)?;
        XSpec::parse(&text).map_err(serde::de::Error::custom)
    }
}

/// Seconds as written in a spec (`2`, `0.25`): 0 to a day.
fn parse_seconds(text: &str) -> Option<std::time::Duration> {
    let secs: f64 = text.trim().parse().ok()?;
    (secs.is_finite() && (0.0..=86_400.0).contains(&secs))
        .then(|| std::time::Duration::from_secs_f64(secs))
}

/// The body of the `xspec_parse` fuzz target: reads `data` as UTF-8 (lossy),
/// and when it parses, asserts that `Display` gives back the same string and
/// that this string parses to the same spec.
///
/// # Panics
///
/// Only when the round trip fails, which is a bug in this crate.
///
/// # Examples
///
/// ```
/// execnet_xspec::fuzz_parse(b"ssh=-p 2222 host//env:A=b=c//id=x");
/// execnet_xspec::fuzz_parse(b"\xff//popen////");
/// ```
pub fn fuzz_parse(data: &[u8]) {
    let text = String::from_utf8_lossy(data);
    if let Ok(spec) = XSpec::parse(&text) {
        let shown = spec.to_string();
        assert_eq!(shown, text, "Display changed the spec string");
        assert_eq!(
            XSpec::parse(&shown).as_ref(),
            Ok(&spec),
            "Display output did not parse back to the same spec"
        );
    }
}

#[cfg(test)]
mod tests;
