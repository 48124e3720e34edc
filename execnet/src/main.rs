//! The `execnet` command line: run Python code on one or many fresh
//! interpreters (`exec`) and describe them (`rinfo`). `execnet --help` and
//! `execnet COMMAND --help` say more.

mod cli;

fn main() -> std::process::ExitCode {
    cli::main()
}
