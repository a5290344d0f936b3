//! The binary's command line and its remote-run reporting.

pub mod args;
pub mod commands;
pub mod remote_run;
