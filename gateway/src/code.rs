//! [`RemoteCode`]: what `remote_exec` sends, beyond the bare source.

use execnet_wire::{Call, Value};

/// Python code for [`Gateway::remote_exec_code`](crate::Gateway::remote_exec_code):
/// the source, the file name it is compiled under (so tracebacks name the
/// file and show its lines), and optionally a function the source defines,
/// called afterwards as `function(channel, **kwargs)` — execnet's
/// `remote_exec(module)` and `remote_exec(function, **kwargs)`.
///
/// A plain `&str` or `String` converts into a `RemoteCode` with neither.
///
/// # Examples
///
/// ```
/// # use execnet_gateway as execnet;
/// use execnet::{to_value, Gateway, RemoteCode};
///
/// # futures_lite::future::block_on(async {
/// let code = RemoteCode::new("def double(channel, n):\n    channel.send(2 * n)\n")
///     .filename("double.py")
///     .call("double", [("n", to_value(&21).unwrap())]);
/// let gw = Gateway::open("popen").await?;
/// let ch = gw.remote_exec_code(code).await?;
/// assert_eq!(ch.receive::<i64>().await?, 42);
/// gw.exit().await?;
/// # Ok::<_, execnet::Error>(()) }).unwrap();
/// ```
#[derive(Clone, Debug, PartialEq)]
pub struct RemoteCode {
    pub(crate) source: String,
    pub(crate) filename: Option<String>,
    pub(crate) call: Option<Call>,
}

impl RemoteCode {
    /// Code from its source; compiled as `<remote exec>`, nothing called.
    pub fn new(source: impl Into<String>) -> RemoteCode {
        RemoteCode {
            source: source.into(),
            filename: None,
            call: None,
        }
    }

    /// Compile the source under this file name (tracebacks show it, with
    /// the source's own lines).
    pub fn filename(mut self, name: impl Into<String>) -> RemoteCode {
        self.filename = Some(name.into());
        self
    }

    /// After running the source, call `function(channel, **kwargs)`;
    /// `function` must be defined by the source.
    pub fn call<K: Into<String>>(
        mut self,
        function: impl Into<String>,
        kwargs: impl IntoIterator<Item = (K, Value)>,
    ) -> RemoteCode {
        self.call = Some(Call {
            function: function.into(),
            kwargs: kwargs.into_iter().map(|(k, v)| (k.into(), v)).collect(),
        });
        self
    }

    /// The source.
    pub fn source(&self) -> &str {
        &self.source
    }

    /// The file name, if one was given.
    pub fn file_name(&self) -> Option<&str> {
        self.filename.as_deref()
    }

    /// The function to call, if any.
    pub fn function(&self) -> Option<&str> {
        self.call.as_ref().map(|c| c.function.as_str())
    }

    /// The keyword arguments of the call (empty without one).
    pub fn kwargs(&self) -> &[(String, Value)] {
        self.call.as_ref().map_or(&[], |c| c.kwargs.as_slice())
    }
}

impl From<&str> for RemoteCode {
    fn from(source: &str) -> RemoteCode {
        RemoteCode::new(source)
    }
}

impl From<String> for RemoteCode {
    fn from(source: String) -> RemoteCode {
        RemoteCode::new(source)
    }
}
