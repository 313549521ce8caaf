//! The integration tests of `poolside-bufpool`, one module per subject, linked into
//! one test binary.

mod bufpool;
mod builders;
mod bytes;
mod lifecycle;
mod model;
mod panics;
mod peers;
mod pool;
mod stress;
