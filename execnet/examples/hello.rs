//! Hello from a fresh Python interpreter, with the blocking API.
//!
//! ```text
//! cargo run -p execnet --example hello
//! ```

use execnet::blocking::Gateway;

fn main() -> execnet::Result<()> {
    let gw = Gateway::open("popen")?;
    let ch = gw.remote_exec(
        "import platform\n\
         name = channel.receive()\n\
         channel.send(f'hello {name}, from Python {platform.python_version()}')",
    )?;
    ch.send("Rust")?;
    let greeting: String = ch.receive()?;
    println!("{greeting}");
    gw.exit()
}
