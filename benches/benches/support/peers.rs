//! Peer pools as every bench builds them: opened to their size up front and with no
//! test on checkout, as the other contenders run.

/// A bb8 pool of `size` connections, all opened before it returns, with no test on
/// checkout.
pub(crate) async fn bb8_pool<M: bb8::ManageConnection>(manager: M, size: usize) -> bb8::Pool<M> {
    bb8_builder(size).build(manager).await.unwrap()
}

/// The settings behind [`bb8_pool`], for a bench that adds one of its own.
pub(crate) fn bb8_builder<M: bb8::ManageConnection>(size: usize) -> bb8::Builder<M> {
    let size = u32::try_from(size).expect("a bench pool size fits u32");
    bb8::Pool::builder().max_size(size).min_idle(Some(size)).test_on_check_out(false)
}
