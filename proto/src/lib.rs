//! The execnet protocol session: a sans-IO state machine.

pub mod session;
mod session_fuzz;

pub use session_fuzz::fuzz_session;
