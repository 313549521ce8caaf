//! A typed pool of your own type, with a reset hook instead of the `Reset` trait and a
//! retain policy that refuses objects that grew too large.
//!
//! `cargo run -p poolside-bufpool --example typed_generic_pool`

use poolside_bufpool::PoolBuilder;

struct Tokenizer {
    tokens: Vec<String>,
    line: usize,
}

fn main() {
    let pool = PoolBuilder::with_reset(
        || Tokenizer { tokens: Vec::with_capacity(64), line: 0 },
        |t| {
            t.tokens.clear();
            t.line = 0;
        },
    )
    .retain(|t| t.tokens.capacity() <= 1024)
    .max_retained(32)
    .build()
    .expect("valid settings");

    for (n, text) in ["let x = 1;", "fn main() {}", "a b c d e f"].iter().enumerate() {
        let mut tok = pool.get();
        assert!(tok.tokens.is_empty() && tok.line == 0, "always clean");
        tok.line = n + 1;
        tok.tokens.extend(text.split_whitespace().map(str::to_owned));
        println!("line {}: {:?}", tok.line, tok.tokens);
    }
    let stats = pool.stats();
    println!("one tokenizer served {} gets ({} made)", stats.hits + stats.misses, stats.misses);
}
