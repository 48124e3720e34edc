//! The standard traits of `Value`, safe at any nesting depth.
//!
//! A `Value` can be nested as deep as a program cares to build it, and the
//! derived `Drop`, `Clone`, `PartialEq` and `Debug` would recurse once per
//! level: a million-deep list would overflow the stack and abort the process.
//! These implementations keep their work on the heap instead.

use std::fmt;
use std::mem;

use crate::{Value, MAX_DEPTH};

impl Drop for Value {
    fn drop(&mut self) {
        let empty = match self {
            Value::List(items)
            | Value::Tuple(items)
            | Value::Set(items)
            | Value::FrozenSet(items) => items.is_empty(),
            Value::Dict(pairs) => pairs.is_empty(),
            _ => true,
        };
        if !empty {
            empty_out(self, 0);
        }
    }
}

/// Up to this depth, emptying recurses (fast); deeper, it goes on with a
/// stack on the heap.
const RECURSE: usize = 64;

/// Drops everything inside container `v`, leaving it empty: children that
/// are containers are emptied first, so no drop ever recurses more than
/// [`RECURSE`] levels.
fn empty_out(v: &mut Value, depth: usize) {
    let mut each = |child: &mut Value| {
        if is_container(child) {
            if depth < RECURSE {
                empty_out(child, depth + 1);
            } else {
                empty_deep(child);
            }
        }
    };
    match v {
        Value::List(items) | Value::Tuple(items) | Value::Set(items) | Value::FrozenSet(items) => {
            items.iter_mut().for_each(&mut each);
            items.clear();
        }
        Value::Dict(pairs) => {
            for (k, x) in pairs.iter_mut() {
                each(k);
                each(x);
            }
            pairs.clear();
        }
        _ => {}
    }
}

/// [`empty_out`] for a container deep down: one iterator per level, on
/// the heap.
fn empty_deep(v: &mut Value) {
    let mut stack = vec![Children::take(v)];
    while let Some(top) = stack.last_mut() {
        match top.next() {
            Some(mut child) => {
                if is_container(&child) {
                    stack.push(Children::take(&mut child));
                }
                // `child` is a scalar or an emptied container: flat drop.
            }
            None => {
                stack.pop();
            }
        }
    }
}

pub(crate) fn is_container(v: &Value) -> bool {
    matches!(
        v,
        Value::List(_) | Value::Tuple(_) | Value::Dict(_) | Value::Set(_) | Value::FrozenSet(_)
    )
}

/// The children of a container, moved out of it (which leaves it empty).
enum Children {
    Items(std::vec::IntoIter<Value>),
    Pairs(std::vec::IntoIter<(Value, Value)>, Option<Value>),
}

impl Children {
    fn take(v: &mut Value) -> Children {
        match v {
            Value::Dict(pairs) => Children::Pairs(mem::take(pairs).into_iter(), None),
            Value::List(items)
            | Value::Tuple(items)
            | Value::Set(items)
            | Value::FrozenSet(items) => Children::Items(mem::take(items).into_iter()),
            _ => Children::Items(Vec::new().into_iter()),
        }
    }
}

impl Iterator for Children {
    type Item = Value;

    fn next(&mut self) -> Option<Value> {
        match self {
            Children::Items(items) => items.next(),
            Children::Pairs(pairs, value) => value.take().or_else(|| {
                let (k, v) = pairs.next()?;
                *value = Some(v);
                Some(k)
            }),
        }
    }
}

impl Default for Value {
    /// `Value::None`, so that [`std::mem::take`] works on values.
    fn default() -> Value {
        Value::None
    }
}

/// Which container a pending clone builds.
#[derive(Clone, Copy)]
enum Kind {
    List,
    Tuple,
    Dict,
    Set,
    FrozenSet,
}

/// One container being cloned: its source children (a dict's as key,
/// value, key, value, ...), the next one to copy, and the copies so far.
struct Partial<'a> {
    kind: Kind,
    source: Source<'a>,
    next: usize,
    done: Vec<Value>,
}

#[derive(Clone, Copy)]
enum Source<'a> {
    Items(&'a [Value]),
    Pairs(&'a [(Value, Value)]),
}

impl<'a> Source<'a> {
    /// The children of a container; `None` for a scalar.
    fn of(v: &'a Value) -> Option<Source<'a>> {
        match v {
            Value::List(items)
            | Value::Tuple(items)
            | Value::Set(items)
            | Value::FrozenSet(items) => Some(Source::Items(items)),
            Value::Dict(pairs) => Some(Source::Pairs(pairs)),
            _ => None,
        }
    }

    fn len(self) -> usize {
        match self {
            Source::Items(items) => items.len(),
            Source::Pairs(pairs) => pairs.len() * 2,
        }
    }

    fn get(self, i: usize) -> &'a Value {
        match self {
            Source::Items(items) => &items[i],
            Source::Pairs(pairs) if i % 2 == 0 => &pairs[i / 2].0,
            Source::Pairs(pairs) => &pairs[i / 2].1,
        }
    }
}

impl<'a> Partial<'a> {
    /// `None` for a scalar.
    fn of(v: &'a Value) -> Option<Partial<'a>> {
        let (kind, source) = match v {
            Value::List(items) => (Kind::List, Source::Items(items)),
            Value::Tuple(items) => (Kind::Tuple, Source::Items(items)),
            Value::Set(items) => (Kind::Set, Source::Items(items)),
            Value::FrozenSet(items) => (Kind::FrozenSet, Source::Items(items)),
            Value::Dict(pairs) => (Kind::Dict, Source::Pairs(pairs)),
            _ => return None,
        };
        Some(Partial {
            kind,
            source,
            next: 0,
            done: Vec::with_capacity(source.len()),
        })
    }

    fn finish(self) -> Value {
        match self.kind {
            Kind::List => Value::List(self.done),
            Kind::Tuple => Value::Tuple(self.done),
            Kind::Set => Value::Set(self.done),
            Kind::FrozenSet => Value::FrozenSet(self.done),
            Kind::Dict => {
                let mut pairs = Vec::with_capacity(self.done.len() / 2);
                let mut flat = self.done.into_iter();
                while let (Some(k), Some(v)) = (flat.next(), flat.next()) {
                    pairs.push((k, v));
                }
                Value::Dict(pairs)
            }
        }
    }
}

fn clone_scalar(v: &Value) -> Value {
    match v {
        Value::None => Value::None,
        Value::Bool(b) => Value::Bool(*b),
        Value::Int(n) => Value::Int(n.clone()),
        Value::Float(x) => Value::Float(*x),
        Value::Complex(c) => Value::Complex(*c),
        Value::Bytes(b) => Value::Bytes(b.clone()),
        Value::Str(s) => Value::Str(s.clone()),
        Value::Channel(c) => Value::Channel(c.clone()),
        // Containers are cloned by `Value::clone`'s loop.
        Value::List(_) | Value::Tuple(_) | Value::Dict(_) | Value::Set(_) | Value::FrozenSet(_) => {
            Value::None
        }
    }
}

impl Clone for Value {
    fn clone(&self) -> Value {
        let Some(root) = Partial::of(self) else {
            return clone_scalar(self);
        };
        let mut stack = vec![root];
        loop {
            let Some(top) = stack.last_mut() else {
                // Unreachable: the loop returns when the root is finished.
                return Value::None;
            };
            if top.next < top.source.len() {
                let child = top.source.get(top.next);
                top.next += 1;
                match Partial::of(child) {
                    Some(partial) => stack.push(partial),
                    None => top.done.push(clone_scalar(child)),
                }
                continue;
            }
            let finished = stack.pop().map(Partial::finish).unwrap_or_default();
            match stack.last_mut() {
                Some(parent) => parent.done.push(finished),
                None => return finished,
            }
        }
    }
}

impl PartialEq for Value {
    fn eq(&self, other: &Value) -> bool {
        // One (left, right, next index) per container level being compared.
        let mut stack: Vec<(Source<'_>, Source<'_>, usize)> = Vec::new();
        let mut pair = Some((self, other));
        loop {
            if let Some((a, b)) = pair.take() {
                match (Source::of(a), Source::of(b)) {
                    (None, None) => {
                        if !scalar_eq(a, b) {
                            return false;
                        }
                    }
                    (Some(x), Some(y)) => {
                        if mem::discriminant(a) != mem::discriminant(b) || x.len() != y.len() {
                            return false;
                        }
                        stack.push((x, y, 0));
                    }
                    _ => return false,
                }
            }
            let Some((x, y, next)) = stack.last_mut() else {
                return true;
            };
            if *next < x.len() {
                pair = Some((x.get(*next), y.get(*next)));
                *next += 1;
            } else {
                stack.pop();
            }
        }
    }
}

fn scalar_eq(a: &Value, b: &Value) -> bool {
    match (a, b) {
        (Value::None, Value::None) => true,
        (Value::Bool(x), Value::Bool(y)) => x == y,
        (Value::Int(x), Value::Int(y)) => x == y,
        (Value::Float(x), Value::Float(y)) => x == y,
        (Value::Complex(x), Value::Complex(y)) => x == y,
        (Value::Bytes(x), Value::Bytes(y)) => x == y,
        (Value::Str(x), Value::Str(y)) => x == y,
        (Value::Channel(x), Value::Channel(y)) => x == y,
        _ => false,
    }
}

/// `Debug` as derived (`List([Int(1), Str("a")])`), with containers deeper
/// than [`MAX_DEPTH`] shown as `...`.
struct Shown<'a>(&'a Value, usize);

impl fmt::Debug for Shown<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let Shown(v, depth) = *self;
        if is_container(v) && depth >= MAX_DEPTH {
            return f.write_str("...");
        }
        let items = |name: &str, items: &[Value], f: &mut fmt::Formatter<'_>| {
            let list = Entries(items, depth + 1);
            f.debug_tuple(name).field(&list).finish()
        };
        match v {
            Value::None => f.write_str("None"),
            Value::Bool(b) => f.debug_tuple("Bool").field(b).finish(),
            Value::Int(n) => f.debug_tuple("Int").field(n).finish(),
            Value::Float(x) => f.debug_tuple("Float").field(x).finish(),
            Value::Complex(c) => f.debug_tuple("Complex").field(c).finish(),
            Value::Bytes(b) => f.debug_tuple("Bytes").field(b).finish(),
            Value::Str(s) => f.debug_tuple("Str").field(s).finish(),
            Value::List(v) => items("List", v, f),
            Value::Tuple(v) => items("Tuple", v, f),
            Value::Set(v) => items("Set", v, f),
            Value::FrozenSet(v) => items("FrozenSet", v, f),
            Value::Dict(pairs) => {
                let list = PairEntries(pairs, depth + 1);
                f.debug_tuple("Dict").field(&list).finish()
            }
            Value::Channel(c) => f.debug_tuple("Channel").field(c).finish(),
        }
    }
}

struct Entries<'a>(&'a [Value], usize);

impl fmt::Debug for Entries<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_list()
            .entries(self.0.iter().map(|v| Shown(v, self.1)))
            .finish()
    }
}

struct PairEntries<'a>(&'a [(Value, Value)], usize);

impl fmt::Debug for PairEntries<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_list()
            .entries(
                self.0
                    .iter()
                    .map(|(k, v)| (Shown(k, self.1), Shown(v, self.1))),
            )
            .finish()
    }
}

impl fmt::Debug for Value {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        Shown(self, 0).fmt(f)
    }
}

impl fmt::Display for Value {
    /// As [`Value::repr`]: the value as Python's `repr()` writes it.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.repr())
    }
}

/// How deep containers nest in `v` (0 for a scalar), counted without
/// recursion; stops counting past `limit`.
pub(crate) fn depth_exceeds(v: &Value, limit: usize) -> bool {
    let mut pending: Vec<(&Value, usize)> = vec![(v, 0)];
    while let Some((v, depth)) = pending.pop() {
        if !is_container(v) {
            continue;
        }
        if depth >= limit {
            return true;
        }
        match v {
            Value::List(items)
            | Value::Tuple(items)
            | Value::Set(items)
            | Value::FrozenSet(items) => {
                pending.extend(
                    items
                        .iter()
                        .filter(|x| is_container(x))
                        .map(|x| (x, depth + 1)),
                );
            }
            Value::Dict(pairs) => {
                for (k, x) in pairs {
                    pending.push((k, depth + 1));
                    pending.push((x, depth + 1));
                }
            }
            _ => {}
        }
    }
    false
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{ChannelRef, Complex, Int};

    fn nest(depth: usize) -> Value {
        let mut v = Value::from(1);
        for i in 0..depth {
            v = if i % 3 == 0 {
                Value::Dict(vec![(Value::from("k"), v)])
            } else {
                Value::List(vec![v, Value::None])
            };
        }
        v
    }

    #[test]
    fn debug_matches_the_derived_format() {
        let v = Value::List(vec![
            Value::None,
            Value::Bool(true),
            Value::Int(Int::from(-3)),
            Value::Float(1.5),
            Value::Complex(Complex::new(1.0, 2.0)),
            Value::Bytes(vec![1]),
            Value::Str("a".into()),
            Value::Tuple(vec![]),
            Value::Dict(vec![(Value::from("k"), Value::Set(vec![]))]),
            Value::FrozenSet(vec![Value::Channel(ChannelRef::new(3))]),
        ]);
        assert_eq!(
            format!("{v:?}"),
            "List([None, Bool(true), Int(-3), Float(1.5), Complex(Complex { re: 1.0, im: 2.0 }), \
             Bytes([1]), Str(\"a\"), Tuple([]), Dict([(Str(\"k\"), Set([]))]), \
             FrozenSet([Channel(ChannelRef(3))])])"
        );
    }

    #[test]
    fn clone_and_eq_keep_structure() {
        let v = nest(50);
        let w = v.clone();
        assert_eq!(v, w);
        assert_eq!(format!("{v:?}"), format!("{w:?}"));
        assert_ne!(v, nest(49));
        assert_ne!(Value::Float(f64::NAN), Value::Float(f64::NAN));
        assert_ne!(Value::List(vec![]), Value::Tuple(vec![]));
    }

    #[test]
    fn depth_count() {
        assert!(!depth_exceeds(&Value::None, 0));
        assert!(depth_exceeds(&Value::List(vec![]), 0));
        assert!(!depth_exceeds(&nest(10), 10));
        assert!(depth_exceeds(&nest(11), 10));
    }
}
