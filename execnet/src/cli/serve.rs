//! `execnet serve`: the authenticated socket server.

use std::io::Write;
use std::path::PathBuf;

use clap::Args;
use execnet::server::Server;
use execnet::Token;

use super::{FAILED, USAGE};

/// Serve fresh Python workers over TCP to clients that know the token.
///
/// Each connection must first pass an HMAC-SHA256 challenge–response over
/// the shared token; then a fresh `python3` worker is started for it. The
/// first line on stdout is `listening on HOST:PORT`.
#[derive(Debug, Args)]
#[command(after_help = "Examples:\n  \
    execnet serve --token-file ~/.execnet-token\n  \
    execnet serve --listen 127.0.0.1:0 --token-file token   # any free port\n  \
    EXECNET_TOKEN=secret execnet serve\n\n\
    Clients: execnet exec --gw socket=HOST:PORT//token_file=token -c ...")]
pub struct ServeArgs {
    /// The address to listen on.
    #[arg(long, value_name = "ADDR", default_value = "127.0.0.1:8888")]
    listen: String,
    /// The token file; created with a fresh random token (mode 0600) if missing.
    #[arg(long, value_name = "F")]
    token_file: Option<PathBuf>,
    /// Accept clients without any token (anyone who can connect runs code!).
    #[arg(long)]
    insecure_no_auth: bool,
}

/// Run the server until killed.
pub fn run(args: ServeArgs) -> u8 {
    let token = match (&args.token_file, std::env::var("EXECNET_TOKEN")) {
        (Some(path), _) => match Token::load_or_create(path) {
            Ok(token) => Some(token),
            Err(e) => {
                eprintln!("execnet serve: token file {}: {e}", path.display());
                return USAGE;
            }
        },
        (None, Ok(text)) => match Token::new(&text) {
            Some(token) => Some(token),
            None => {
                eprintln!("execnet serve: EXECNET_TOKEN is empty");
                return USAGE;
            }
        },
        (None, Err(_)) if args.insecure_no_auth => None,
        (None, Err(_)) => {
            eprintln!(
                "execnet serve: no token: give --token-file F or set EXECNET_TOKEN \
                 (or --insecure-no-auth to let anyone who can connect run code)"
            );
            return USAGE;
        }
    };
    if token.is_none() {
        eprintln!("execnet serve: WARNING: no authentication, anyone who can connect runs code");
    }
    let server = match Server::bind(&args.listen, token) {
        Ok(server) => server,
        Err(e) => {
            eprintln!("execnet serve: cannot listen on {}: {e}", args.listen);
            return FAILED;
        }
    };
    match server.local_addr() {
        Ok(addr) => {
            let mut out = std::io::stdout().lock();
            let _ = writeln!(out, "listening on {addr}");
            let _ = out.flush();
        }
        Err(e) => {
            eprintln!("execnet serve: {e}");
            return FAILED;
        }
    }
    match futures_lite::future::block_on(server.run()) {
        Ok(()) => 0,
        Err(e) => {
            eprintln!("execnet serve: {e}");
            FAILED
        }
    }
}
