//! The core: every use case, whichever door it came through.

pub mod operator;
