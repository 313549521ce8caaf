//! Pooling a struct with a Vec and a HashMap, cleared in place ("clear, don't
//! replace"): the collections keep their allocations between borrowers.
//!
//! `cargo run -p poolside-bufpool --example struct_cleared_in_place`

use poolside_bufpool::{Pool, Reset};
use std::collections::HashMap;

#[derive(Default)]
struct RequestState {
    headers: HashMap<String, String>,
    body: Vec<u8>,
    retries: u32,
}

impl Reset for RequestState {
    fn reset(&mut self) {
        self.headers.clear(); // keeps the table's buckets
        self.body.clear(); // keeps the buffer
        self.retries = 0;
    }
}

fn main() {
    let pool = Pool::new(RequestState::default);
    {
        let mut state = pool.get();
        for i in 0..64 {
            state.headers.insert(format!("x-header-{i}"), "value".into());
        }
        state.body.extend_from_slice(&[0u8; 8192]);
        state.retries = 3;
    }
    let state = pool.get();
    println!(
        "reused state: {} headers, {} body bytes, {} retries; kept capacity: map {}, body {}",
        state.headers.len(),
        state.body.len(),
        state.retries,
        state.headers.capacity(),
        state.body.capacity()
    );
    assert!(state.headers.is_empty() && state.body.is_empty() && state.retries == 0);
    assert!(state.headers.capacity() >= 64 && state.body.capacity() >= 8192);
}
