//! A custom transport: the worker runs under `sh -c`, the way you would wrap
//! it in `docker exec -i CONTAINER`, `kubectl exec -i`, or a serial line.
//! Anything that yields a byte stream to a process running the bootstrap
//! (`python3 -c LOADER`) can carry a gateway.

use execnet::transport::{BoxFuture, CommandTransport, Connection, Transport, TransportError};
use execnet::{Gateway, XSpec};

/// Runs the worker through `sh -c 'exec python3 -c "$0"' LOADER`.
#[derive(Debug)]
struct ShellTransport {
    shell: String,
}

impl Transport for ShellTransport {
    fn connect(&mut self) -> BoxFuture<'_, Result<Connection, TransportError>> {
        Box::pin(async move {
            let mut cmd = async_process::Command::new(&self.shell);
            cmd.args(["-c", "exec python3 -c \"$0\"", execnet::LOADER]);
            // CommandTransport pipes stdin/stdout, captures stderr, reaps the child.
            let mut conn =
                CommandTransport::new(cmd, format!("{} -c python3", self.shell)).spawn()?;
            conn.description = "python3 under sh".to_string();
            Ok(conn)
        })
    }
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    futures_lite::future::block_on(async {
        let transport = ShellTransport { shell: "sh".into() };
        let gw = Gateway::from_transport(transport, XSpec::parse("popen//id=sh")?, "sh").await?;
        let ch = gw
            .remote_exec("import os; channel.send(os.getpid())")
            .await?;
        let pid: u32 = ch.receive().await?;
        // `exec` replaced the shell by python: the local child is the worker.
        println!("worker pid {pid}, local child {:?}", gw.pid());
        gw.exit().await?;
        Ok(())
    })
}
