//! The one error type of this crate.

/// Why a spec string (or a [`XSpec::set`](crate::XSpec::set) call) was
/// rejected.
///
/// Every variant names the offending part (`key=value` as written) so that
/// the message points at the mistake; the `Display` text reads
/// `bad spec part "nice=abc": ...`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ParseError {
    /// The spec string is empty.
    #[error("empty spec: give at least one part, e.g. \"popen\"")]
    EmptySpec,

    /// Two `//` separators with nothing between them, or a leading or
    /// trailing `//`.
    #[error("empty part #{index} (counting from 1) in spec {spec:?}: parts are joined by a single \"//\"")]
    EmptyPart {
        /// The whole spec string.
        spec: String,
        /// Position of the empty part, counting from 1.
        index: usize,
    },

    /// The part starts with `=`.
    #[error("bad spec part {part:?}: empty key before \"=\"")]
    EmptyKey {
        /// The part as written.
        part: String,
    },

    /// The key starts with `_`, which is reserved (as in execnet).
    #[error("bad spec part {part:?}: keys starting with \"_\" are reserved")]
    ReservedKey {
        /// The part as written.
        part: String,
    },

    /// The same key appears twice.
    #[error("bad spec part {part:?}: duplicate key {key:?}")]
    DuplicateKey {
        /// The second part with that key.
        part: String,
        /// The repeated key.
        key: String,
    },

    /// More than one of `popen`, `ssh=`, `socket=`.
    #[error("bad spec part {part:?}: a spec has exactly one of popen, ssh=, socket=, but {first:?} came first")]
    TwoTransports {
        /// The second transport part.
        part: String,
        /// The transport part seen first.
        first: String,
    },

    /// `nice=` whose value is not an integer.
    #[error("bad spec part {part:?}: nice must be an integer")]
    BadNice {
        /// The part as written.
        part: String,
    },

    /// `spawn=` other than `fork` or `direct`.
    #[error("bad spec part {part:?}: spawn must be \"fork\" (the default) or \"direct\"")]
    BadSpawn {
        /// The part as written.
        part: String,
    },

    /// `spawn_linger=` that is not a number of seconds (0 or more, at most a day).
    #[error("bad spec part {part:?}: spawn_linger must be a number of seconds, 0 to 86400")]
    BadSpawnLinger {
        /// The part as written.
        part: String,
    },

    /// `ssh` or `socket` without a value (or with a blank one).
    #[error("bad spec part {part:?}: {key} needs a value")]
    EmptyTransportValue {
        /// The part as written.
        part: String,
        /// `ssh` or `socket`.
        key: String,
    },

    /// `execmodel=` other than `thread` or `main_thread_only`.
    #[error("bad spec part {part:?}: execmodel must be \"thread\" or \"main_thread_only\"")]
    BadExecmodel {
        /// The part as written.
        part: String,
    },

    /// `installvia=` in a spec that is not `socket=`.
    #[error("bad spec part {part:?}: installvia only works with socket=HOST:PORT")]
    InstallviaWithoutSocket {
        /// The part as written.
        part: String,
    },

    /// `socket=` whose value is not `HOST:PORT`.
    #[error("bad spec part {part:?}: socket address must be HOST:PORT ({reason})")]
    BadSocketAddress {
        /// The part as written.
        part: String,
        /// What is wrong with the address.
        reason: &'static str,
    },

    /// `python=` whose value is not a command line (an unclosed quote, a
    /// trailing backslash).
    #[error("bad spec part {part:?}: python must be a command line ({reason})")]
    BadPython {
        /// The part as written.
        part: String,
        /// What is wrong with it.
        reason: &'static str,
    },

    /// `env:=value`: the variable name is empty.
    #[error("bad spec part {part:?}: empty variable name after \"env:\"")]
    EmptyEnvName {
        /// The part as written.
        part: String,
    },

    /// A key the engine does not act on, found when a gateway is opened
    /// ([`XSpec::check_keys`](crate::XSpec::check_keys)).
    #[error(
        "bad spec part {part:?}: unknown key {key:?}{}; keys of your own start with \"x-\"",
        match suggestion {
            Some(known) => format!(" (did you mean {known:?}?)"),
            None => format!(" (known keys: {})", crate::KNOWN_KEYS.join(", ")),
        }
    )]
    UnknownKey {
        /// The part as written.
        part: String,
        /// The unknown key.
        key: String,
        /// The known key it most likely means.
        suggestion: Option<&'static str>,
    },

    /// `id=`, `via=` or `installvia=` with an empty value or a control
    /// character (a newline) in it.
    #[error("bad spec part {part:?}: {reason}")]
    BadId {
        /// The part as written.
        part: String,
        /// What is wrong with it.
        reason: &'static str,
    },

    /// A yes/no key (`insecure_no_auth`) with a value that is neither.
    #[error("bad spec part {part:?}: {key} is a yes/no setting: give it bare, or =yes or =no")]
    BadFlag {
        /// The part as written.
        part: String,
        /// The key.
        key: &'static str,
    },

    /// A [`XSpec::set`](crate::XSpec::set) value that no spec string can
    /// carry, e.g. one containing `//`.
    #[error("bad spec part {part:?}: {reason}")]
    Unrepresentable {
        /// The part that would have been written.
        part: String,
        /// Why it cannot be written.
        reason: &'static str,
    },
}
