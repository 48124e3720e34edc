//! `ItemQueue`: received items, waiting, at the cost of their bytes.

use std::collections::VecDeque;
use std::fmt;

use crate::Item;

/// Items up to this many bytes are packed together; larger ones keep their
/// own allocation (moved in and out, never copied).
const SMALL_MAX: usize = 4096;
/// Bits of an entry: the item's length, its frame's header length (`cost -
/// length`), and whether it holds channels.
const LEN_BITS: u32 = 27;
const LEN_MASK: u32 = (1 << LEN_BITS) - 1;
const HEADER_MAX: usize = 15;
const HAS_CHANNELS: u32 = 1 << 31;
/// The entry of an item kept in `big`.
const BIG: u32 = LEN_MASK;
/// Packed bytes are moved to the front once this many are consumed (and
/// they are at least half the buffer).
const COMPACT_AFTER: usize = 64 * 1024;
/// An empty buffer larger than this is given back.
const SHRINK_ABOVE: usize = 1 << 20;

/// A first-in first-out queue of received [`Item`]s, each with its
/// flow-control cost (the body length of the frame that carried it).
///
/// The queue costs about what its items' bytes cost, whatever they hold:
/// small items are packed back to back in one buffer with four bytes of
/// bookkeeping each, larger ones keep their own allocation. (A queue of
/// decoded `Value`s would cost at least `size_of::<Value>()` per element;
/// a list of a million `None`s is a million bytes here.)
///
/// # Examples
///
/// ```
/// use execnet_wire::{Item, ItemQueue};
///
/// let mut q = ItemQueue::new();
/// q.push(Item::encode(&1).unwrap(), 4);
/// q.push(Item::encode(&vec![0u8; 10_000]).unwrap(), 10_007);
/// assert_eq!((q.len(), q.cost()), (2, 10_011));
/// let (first, cost) = q.pop().unwrap();
/// assert_eq!((first.decode::<i32>().unwrap(), cost), (1, 4));
/// assert_eq!(q.drain_cost(), 10_007);
/// assert!(q.is_empty());
/// ```
#[derive(Default)]
pub struct ItemQueue {
    /// Allocated on the first push: a queue that never held anything (a
    /// channel a peer only named) is one word.
    inner: Option<Box<Inner>>,
}

#[derive(Default)]
struct Inner {
    /// Packed small items; the unread ones are `packed[head..]`.
    packed: Vec<u8>,
    head: usize,
    /// One per item, in order.
    entries: VecDeque<u32>,
    /// The large items and their costs, in order.
    big: VecDeque<(Item, u32)>,
    cost: u64,
}

impl fmt::Debug for ItemQueue {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ItemQueue")
            .field("items", &self.len())
            .field("cost", &self.cost())
            .finish_non_exhaustive()
    }
}

impl ItemQueue {
    /// An empty queue.
    pub fn new() -> ItemQueue {
        ItemQueue::default()
    }

    /// Appends `item`, which came in a frame of `cost` body bytes.
    pub fn push(&mut self, item: Item, cost: u32) {
        self.inner.get_or_insert_with(Box::default).push(item, cost);
    }

    /// Takes the oldest item and its cost.
    pub fn pop(&mut self) -> Option<(Item, u32)> {
        self.inner.as_mut()?.pop()
    }

    /// Drops every item; returns their total cost.
    pub fn drain_cost(&mut self) -> u64 {
        self.inner.take().map_or(0, |inner| inner.cost)
    }

    /// How many items are waiting.
    pub fn len(&self) -> usize {
        self.inner.as_ref().map_or(0, |inner| inner.entries.len())
    }

    /// Whether no item is waiting.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The total cost of the waiting items.
    pub fn cost(&self) -> u64 {
        self.inner.as_ref().map_or(0, |inner| inner.cost)
    }
}

impl Inner {
    fn push(&mut self, item: Item, cost: u32) {
        self.cost += u64::from(cost);
        let len = item.len();
        let header = (cost as usize).wrapping_sub(len);
        if len > SMALL_MAX || header > HEADER_MAX {
            self.entries.push_back(BIG);
            self.big.push_back((item, cost));
            return;
        }
        let channels = if item.channels().is_empty() {
            0
        } else {
            HAS_CHANNELS
        };
        item.write_to(&mut self.packed);
        // Fits: len <= SMALL_MAX < 2^27 and header <= 15.
        self.entries
            .push_back(len as u32 | (header as u32) << LEN_BITS | channels);
    }

    fn pop(&mut self) -> Option<(Item, u32)> {
        let entry = self.entries.pop_front()?;
        if entry == BIG {
            let (item, cost) = self.big.pop_front()?;
            self.cost -= u64::from(cost);
            return Some((item, cost));
        }
        let len = (entry & LEN_MASK) as usize;
        let header = (entry & !HAS_CHANNELS) >> LEN_BITS;
        let bytes = &self.packed[self.head..self.head + len];
        let item = Item::from_checked(bytes, entry & HAS_CHANNELS != 0);
        self.head += len;
        self.compact();
        let cost = len as u32 + header;
        self.cost -= u64::from(cost);
        Some((item, cost))
    }

    fn compact(&mut self) {
        if self.head == self.packed.len() {
            self.head = 0;
            self.packed.clear();
            if self.packed.capacity() > SHRINK_ABOVE {
                self.packed = Vec::new();
            }
        } else if self.head >= COMPACT_AFTER && self.head * 2 >= self.packed.len() {
            self.packed.drain(..self.head);
            self.head = 0;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{ChannelRef, Value};

    fn item(v: &Value) -> Item {
        Item::from_value(v).expect("encodes")
    }

    #[test]
    fn keeps_order_and_costs() {
        let values = [
            Value::from(1),
            Value::Bytes(vec![7; SMALL_MAX + 1]),
            Value::Tuple(vec![Value::Channel(ChannelRef::new(4))]),
            Value::from("x"),
        ];
        let mut q = ItemQueue::new();
        for (i, v) in values.iter().enumerate() {
            let it = item(v);
            let cost = it.len() as u32 + 1 + i as u32 % 3;
            q.push(it, cost);
        }
        for (i, v) in values.iter().enumerate() {
            let (it, cost) = q.pop().expect("an item");
            assert_eq!(it.to_value().as_ref(), Ok(v));
            assert_eq!(cost, it.len() as u32 + 1 + i as u32 % 3);
            if i == 2 {
                assert_eq!(it.channels(), [ChannelRef::new(4)]);
            }
        }
        assert!(q.pop().is_none());
        assert_eq!(q.cost(), 0);
    }

    #[test]
    fn an_unused_queue_is_one_word() {
        assert_eq!(
            std::mem::size_of::<ItemQueue>(),
            std::mem::size_of::<usize>()
        );
        let mut q = ItemQueue::new();
        assert_eq!((q.len(), q.cost(), q.pop().is_none()), (0, 0, true));
        assert_eq!(q.drain_cost(), 0);
    }

    #[test]
    fn small_items_cost_their_bytes() {
        let mut q = ItemQueue::new();
        let none = item(&Value::None);
        for _ in 0..100_000 {
            q.push(none.clone(), 3);
        }
        // 1 byte of item and 4 of bookkeeping each, plus growth slack.
        let inner = q.inner.as_ref().expect("allocated");
        assert!(inner.packed.capacity() + 4 * inner.entries.capacity() <= 2 * 5 * 100_000);
        for _ in 0..60_000 {
            q.pop();
        }
        assert!(q.inner.as_ref().expect("allocated").head < COMPACT_AFTER + 100_000 / 2);
        assert_eq!(q.len(), 40_000);
        assert_eq!(q.drain_cost(), 120_000);
    }
}
