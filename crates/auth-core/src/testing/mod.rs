//! Test support (feature `test-support`; never in a production path): a fixed clock, an
//! in-memory [`Store`](crate::store::Store), and the store contract suite every store
//! implementation runs.

mod clock;
mod memory;
pub mod store_suite;

#[cfg(test)]
mod memory_tests;

pub use clock::FixedClock;
pub use memory::MemoryStore;
