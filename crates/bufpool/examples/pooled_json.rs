//! Pooled JSON serialization (feature `json`): serialize into a pooled buffer, write it
//! out, and the buffer goes back capped.
//!
//! `cargo run -p poolside-bufpool --features json --example pooled_json`

#[cfg(feature = "json")]
fn main() -> Result<(), serde_json::Error> {
    use poolside_bufpool::BufPool;

    let pool = BufPool::new();
    for id in 0..3 {
        let doc = serde_json::json!({ "id": id, "items": ["a", "b", "c"] });
        let body = pool.to_json(&doc)?; // zero-copy: a guard over the pooled bytes
        println!("{}", String::from_utf8_lossy(&body));
    }
    let owned: Vec<u8> = pool.to_json_vec(&[1, 2, 3])?; // an owned copy, buffer returned
    println!("{}", String::from_utf8_lossy(&owned));
    let small = &pool.class_stats()[0].1;
    println!("small class: {} miss, {} hits", small.misses, small.hits);
    Ok(())
}

#[cfg(not(feature = "json"))]
fn main() {
    println!("run with --features json");
}
