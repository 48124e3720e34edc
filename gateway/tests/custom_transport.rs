//! The public Transport trait: a tiny custom transport carries a gateway.

use execnet_gateway::{Error, Gateway, Step, XSpec, LOADER};
use execnet_transport::{BoxFuture, CommandTransport, Connection, Transport, TransportError};

/// The worker under `env`, as a stand-in for any wrapper command.
#[derive(Debug)]
struct EnvTransport {
    python: &'static str,
}

impl Transport for EnvTransport {
    fn connect(&mut self) -> BoxFuture<'_, Result<Connection, TransportError>> {
        Box::pin(async move {
            let mut cmd = async_process::Command::new("env");
            cmd.args(["EXECNET_VIA_ENV=1", self.python, "-c", LOADER]);
            CommandTransport::new(cmd, format!("env {}", self.python)).spawn()
        })
    }
}

#[test]
fn custom_transport_carries_a_gateway() {
    futures_lite::future::block_on(async {
        let spec = XSpec::parse("popen").expect("spec");
        let gw = Gateway::from_transport(EnvTransport { python: "python3" }, spec, "custom")
            .await
            .expect("open over the custom transport");
        assert_eq!(gw.id(), "custom");
        let ch = gw
            .remote_exec("import os; channel.send(os.environ.get('EXECNET_VIA_ENV'))")
            .await
            .expect("exec");
        assert_eq!(ch.receive::<String>().await.expect("receive"), "1");
        gw.exit().await.expect("exit");
    });
}

#[test]
fn custom_transport_failure_names_the_step() {
    let spec = XSpec::parse("popen").expect("spec");
    let err = futures_lite::future::block_on(Gateway::from_transport(
        EnvTransport {
            python: "/nonexistent/python9",
        },
        spec,
        "broken",
    ))
    .expect_err("no such interpreter");
    assert!(
        matches!(
            &err,
            Error::Bootstrap {
                step: Step::Interpreter,
                ..
            }
        ),
        "{err}"
    );
    assert!(err.to_string().contains("broken"), "{err}");
}
