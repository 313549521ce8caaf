//! Why a dirty buffer cannot reach the next borrower.
//!
//! In the playbook's Go code the caller must remember `buf.Reset()` before `Put`;
//! forget it once and the next request reads the previous one's bytes. Here the pool
//! resets every object it takes back, and the only way to give an object back is to
//! drop its guard: there is no `put` to forget, and no un-reset path into the pool.
//!
//! `cargo run -p poolside-bufpool --example dirty_buffer_impossible`

use poolside_bufpool::Pool;

fn handle_request(pool: &Pool<Vec<u8>>, user: &str, secret: &str) -> usize {
    let mut scratch = pool.get();
    assert!(scratch.is_empty(), "the pool handed out a dirty buffer");
    scratch.extend_from_slice(format!("user={user} token={secret}").as_bytes());
    scratch.len()
    // `scratch` is dropped here, on every path, panics included: back to the pool, cleared.
}

fn main() {
    let pool: Pool<Vec<u8>> = Pool::new(|| Vec::with_capacity(256));
    let first = handle_request(&pool, "alice", "s3cr3t");
    let second = handle_request(&pool, "bob", "hunter2");
    println!("request 1 wrote {first} bytes, request 2 wrote {second} bytes into the same buffer");

    // Even a panicking request returns its buffer, and it is cleared before reuse.
    std::panic::set_hook(Box::new(|_| {})); // keep the demo's output quiet
    let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        let mut scratch = pool.get();
        scratch.extend_from_slice(b"half-written secret");
        panic!("request failed mid-way");
    }));
    let _ = std::panic::take_hook();
    assert!(result.is_err());
    let next = pool.get();
    println!("after a panic: the next borrower sees {} stale bytes", next.len());
    assert!(next.is_empty());
}
