//! Clearing values in place.

use std::collections::{BTreeMap, BTreeSet, BinaryHeap, HashMap, HashSet, VecDeque};
use std::hash::BuildHasher;

/// Clears a value in place so it can be handed to the next borrower, keeping the
/// memory it already owns.
///
/// A pool calls [`Reset::reset`] before an object is handed out again, so a borrower
/// always receives a clean object and never sees the previous borrower's data. The
/// implementation must leave the value observably equal to a freshly made one while
/// keeping its allocations (that is the whole point of pooling it): call `clear()`,
/// never assign a new, empty value.
///
/// Implemented for the standard collections, `String`, `Box<T: Reset>`, `Option<T: Reset>`
/// (the contained value is reset in place; `None` stays `None`), arrays and tuples of
/// `Reset` values, and `()`.
///
/// # Example
///
/// ```
/// use poolside_core::Reset;
/// use std::collections::HashMap;
///
/// #[derive(Default)]
/// struct Request {
///     headers: HashMap<String, String>,
///     body: Vec<u8>,
/// }
///
/// impl Reset for Request {
///     fn reset(&mut self) {
///         // Clear each field in place: the maps and vectors keep their capacity.
///         self.headers.reset();
///         self.body.reset();
///     }
/// }
///
/// let mut req = Request::default();
/// req.body.extend_from_slice(&[1; 1024]);
/// req.headers.insert("k".into(), "v".into());
/// req.reset();
/// assert!(req.body.is_empty() && req.headers.is_empty());
/// assert!(req.body.capacity() >= 1024);
/// ```
pub trait Reset {
    /// Clears `self` in place, keeping its capacity.
    fn reset(&mut self);
}

macro_rules! reset_by_clear {
    ($($ty:ty => [$($gen:tt)*]),* $(,)?) => {
        $(
            impl<$($gen)*> Reset for $ty {
                #[inline]
                fn reset(&mut self) {
                    self.clear();
                }
            }
        )*
    };
}

reset_by_clear! {
    String => [],
    Vec<T> => [T],
    VecDeque<T> => [T],
    BinaryHeap<T> => [T],
    BTreeMap<K, V> => [K, V],
    BTreeSet<T> => [T],
    HashMap<K, V, S> => [K, V, S: BuildHasher],
    HashSet<T, S> => [T, S: BuildHasher],
}

impl Reset for () {
    #[inline]
    fn reset(&mut self) {}
}

impl<T: Reset + ?Sized> Reset for Box<T> {
    #[inline]
    fn reset(&mut self) {
        (**self).reset();
    }
}

/// Resets the contained value in place and keeps it, with its allocation: `Some(v)`
/// stays `Some` with `v` reset, `None` stays `None`. (Replacing it with `None` would
/// drop the allocation the trait promises to keep.)
///
/// ```
/// use poolside_core::Reset;
///
/// let mut slot = Some(Vec::<u8>::with_capacity(256));
/// slot.as_mut().unwrap().extend_from_slice(b"previous borrower");
/// slot.reset();
/// assert_eq!(slot.as_deref(), Some(&[][..]));
/// assert!(slot.unwrap().capacity() >= 256);
/// ```
impl<T: Reset> Reset for Option<T> {
    #[inline]
    fn reset(&mut self) {
        if let Some(value) = self {
            value.reset();
        }
    }
}

impl<T: Reset, const N: usize> Reset for [T; N] {
    #[inline]
    fn reset(&mut self) {
        self.iter_mut().for_each(Reset::reset);
    }
}

macro_rules! reset_tuple {
    ($($name:ident . $idx:tt),+) => {
        impl<$($name: Reset),+> Reset for ($($name,)+) {
            #[inline]
            fn reset(&mut self) {
                $(self.$idx.reset();)+
            }
        }
    };
}

reset_tuple!(A.0);
reset_tuple!(A.0, B.1);
reset_tuple!(A.0, B.1, C.2);
reset_tuple!(A.0, B.1, C.2, D.3);
reset_tuple!(A.0, B.1, C.2, D.3, E.4);
reset_tuple!(A.0, B.1, C.2, D.3, E.4, F.5);

#[cfg(test)]
mod tests {
    use super::*;

    /// Fills `value` with `fill`, resets it, and checks it is empty with at least the
    /// capacity it had before the reset.
    fn assert_clears_keeping_capacity<T: Reset>(
        mut value: T,
        fill: impl FnOnce(&mut T),
        len: impl Fn(&T) -> usize,
        capacity: impl Fn(&T) -> usize,
    ) {
        fill(&mut value);
        assert!(len(&value) > 0, "the fill must put something in");
        let before = capacity(&value);
        value.reset();
        assert_eq!(len(&value), 0, "reset must empty the value");
        assert!(capacity(&value) >= before, "reset must keep the allocation");
    }

    #[test]
    fn vec_keeps_capacity() {
        assert_clears_keeping_capacity(
            Vec::<u64>::new(),
            |v| v.extend(0..1000),
            Vec::len,
            Vec::capacity,
        );
    }

    #[test]
    fn string_keeps_capacity() {
        assert_clears_keeping_capacity(
            String::new(),
            |s| s.push_str(&"x".repeat(500)),
            String::len,
            String::capacity,
        );
    }

    #[test]
    fn vecdeque_keeps_capacity() {
        assert_clears_keeping_capacity(
            VecDeque::<u32>::new(),
            |v| v.extend(0..300),
            VecDeque::len,
            VecDeque::capacity,
        );
    }

    #[test]
    fn binary_heap_keeps_capacity() {
        assert_clears_keeping_capacity(
            BinaryHeap::<u32>::new(),
            |v| v.extend(0..300),
            BinaryHeap::len,
            BinaryHeap::capacity,
        );
    }

    #[test]
    fn hashmap_keeps_capacity() {
        assert_clears_keeping_capacity(
            HashMap::<u32, u32>::new(),
            |m| m.extend((0..300).map(|i| (i, i))),
            HashMap::len,
            HashMap::capacity,
        );
    }

    #[test]
    fn hashset_keeps_capacity() {
        assert_clears_keeping_capacity(
            HashSet::<u32>::new(),
            |m| m.extend(0..300),
            HashSet::len,
            HashSet::capacity,
        );
    }

    #[test]
    fn btree_collections_are_emptied() {
        // BTree collections have no capacity to keep; they must simply be empty.
        let mut map: BTreeMap<u32, u32> = (0..100).map(|i| (i, i)).collect();
        let mut set: BTreeSet<u32> = (0..100).collect();
        map.reset();
        set.reset();
        assert!(map.is_empty() && set.is_empty());
    }

    #[test]
    fn boxed_value_is_cleared_in_place() {
        let mut boxed: Box<Vec<u8>> = Box::new(vec![7; 256]);
        let data_ptr = boxed.as_ptr();
        let box_ptr: *const Vec<u8> = &*boxed;
        boxed.reset();
        assert!(boxed.is_empty());
        assert!(boxed.capacity() >= 256);
        assert_eq!(boxed.as_ptr(), data_ptr, "the buffer itself was kept");
        assert_eq!(&*boxed as *const Vec<u8>, box_ptr, "the box was not replaced");
    }

    #[test]
    fn tuples_and_arrays_reset_every_element() {
        let mut tuple = (vec![1u8; 64], String::from("abc"), HashMap::from([(1, 2)]));
        tuple.reset();
        assert!(tuple.0.is_empty() && tuple.1.is_empty() && tuple.2.is_empty());
        assert!(tuple.0.capacity() >= 64 && tuple.1.capacity() >= 3);

        let mut array = [vec![1u8; 8], vec![2u8; 16]];
        array.reset();
        assert!(array.iter().all(|v| v.is_empty()));
        assert!(array[1].capacity() >= 16);
    }

    #[test]
    fn option_resets_the_contained_value_in_place() {
        let mut slot = Some(vec![1u8; 512]);
        let data_ptr = slot.as_ref().map(|v| v.as_ptr());
        slot.reset();
        let inner = slot.as_ref().expect("a Some slot stays Some: its allocation is kept");
        assert!(inner.is_empty(), "the contained value is cleared");
        assert!(inner.capacity() >= 512, "the contained value keeps its capacity");
        assert_eq!(Some(inner.as_ptr()), data_ptr, "the buffer itself was kept");

        let mut nested: Option<(String, Option<Vec<u8>>)> =
            Some((String::from("abc"), Some(vec![9; 32])));
        nested.reset();
        let (s, v) = nested.expect("still Some");
        assert!(s.is_empty() && s.capacity() >= 3);
        assert!(v.as_ref().is_some_and(|v| v.is_empty() && v.capacity() >= 32));

        let mut empty: Option<Vec<u8>> = None;
        empty.reset();
        assert!(empty.is_none(), "None stays None");
    }
}
