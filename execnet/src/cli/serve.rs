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
/// first line on stdout is `listening on HOST:PORT`. The token must hold at
/// least 128 bits (32 random hex digits), and a token file must be yours
/// and closed to others (`chmod 600 F`).
#[derive(Debug, Args)]
#[command(after_help = "Examples:\n  \
    execnet serve --token-file ~/.execnet-token\n  \
    execnet serve --listen 127.0.0.1:0 --token-file token   # any free port\n  \
    EXECNET_TOKEN=$(openssl rand -hex 32) execnet serve\n\n\
    Clients: execnet exec --gw socket=HOST:PORT//token_file=token -c ...")]
pub struct ServeArgs {
    /// The address to listen on.
    #[arg(long, value_name = "ADDR", default_value = "127.0.0.1:8888")]
    listen: String,
    /// The token file (yours, mode 600); created with a fresh random 256-bit
    /// token if missing.
    #[arg(long, value_name = "F")]
    token_file: Option<PathBuf>,
    /// Accept clients without any token (anyone who can connect runs code!).
    #[arg(long)]
    insecure_no_auth: bool,
}

/// Run the server until killed.
pub fn run(args: ServeArgs) -> u8 {
    let token = match &args.token_file {
        Some(path) => Token::load_or_create(path).map(Some),
        None => Token::from_env(),
    };
    let token = match token {
        Ok(Some(token)) => Some(token),
        Ok(None) if args.insecure_no_auth => None,
        Ok(None) => {
            eprintln!(
                "execnet serve: no token: give --token-file F (created if missing) or set \
                 EXECNET_TOKEN (or --insecure-no-auth to let anyone who can connect run code)"
            );
            return USAGE;
        }
        Err(e) => {
            eprintln!("execnet serve: {e}");
            return USAGE;
        }
    };
    if token.is_none() {
        log::warn!("no authentication: anyone who can connect runs code");
    }
    execnet::server::raise_fd_limit();
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
