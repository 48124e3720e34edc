//! Turning a failed ssh start into an error that names the step.

use execnet_transport::SshFailure;

use crate::error::Step;

/// The step and message for a classified ssh failure of `what` (`ssh ARGS`);
/// `stderr` is quoted after it by the caller.
pub(crate) fn explain(failure: SshFailure, what: &str) -> (Step, String) {
    match failure {
        SshFailure::UnknownHost(host) => (Step::Host, format!("{what}: unknown host {host}")),
        SshFailure::Connect(line) => (Step::Connect, format!("{what}: cannot connect: {line}")),
        SshFailure::Auth(line) => (
            Step::Auth,
            format!("{what}: authentication refused ({line}); ssh runs with BatchMode=yes, so keys must work without a prompt"),
        ),
        SshFailure::HostKey(line) => (
            Step::Auth,
            format!("{what}: host key mismatch or unknown host key ({line})"),
        ),
        SshFailure::PythonMissing(line) => (
            Step::Interpreter,
            format!("{what}: the remote python was not found ({line}); set python= to the remote interpreter"),
        ),
        SshFailure::PythonTooOld(line) => (
            Step::Interpreter,
            format!("{what}: the remote python is too old ({line})"),
        ),
        // SshFailure is non-exhaustive: a new kind still says what ssh said.
        other => (Step::Connect, format!("{what}: {other:?}")),
    }
}
