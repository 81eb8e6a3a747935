//! The measures of a run, one module each. Every scenario removes the pods it made before
//! it returns, also when a signal cuts it short (it then returns [`Interrupted`] after
//! recording what it measured).
//!
//! [`Interrupted`]: crate::interrupt::Interrupted

pub mod density;
pub mod latency;
pub mod memory;
pub mod parallel;
