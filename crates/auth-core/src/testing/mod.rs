//! Test support (feature `test-support`; never in a production path): a fixed clock, an
//! in-memory [`Store`](crate::store::Store), and the store contract suite every store
//! implementation runs.

mod clock;

pub use clock::FixedClock;
