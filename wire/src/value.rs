//! `Value`: execnet's self-describing data model, and the channel reference.

use std::any::Any;
use std::cell::RefCell;
use std::fmt;
use std::sync::Arc;

use crate::Int;

/// One item of data on the wire: execnet's type set, as Python sees it.
///
/// Containers keep their order; `Dict` keeps its pairs in insertion order (as
/// Python's `dict`), `Set` and `FrozenSet` keep the order they arrived in.
/// Convert Rust data with [`to_value`](crate::to_value) and
/// [`from_value`](crate::from_value); print it as Python would with
/// [`Value::repr`] (or `Display`).
///
/// Nesting depth is not limited by the type, but every operation on a value
/// is safe at any depth: dropping, cloning, comparing and `Debug` never
/// recurse on the call stack, `repr` and `Display` print containers deeper
/// than [`MAX_DEPTH`](crate::MAX_DEPTH) as `...`, and converting or encoding
/// a value nested deeper than that is an error (it could not travel anyway).
/// Because `Value` implements `Drop` (iteratively), move a payload out of it
/// with [`std::mem::take`] on a `&mut` binding, or with the `into_*`
/// methods, rather than by destructuring a `Value` by value.
///
/// # Examples
///
/// ```
/// use execnet_wire::Value;
///
/// let v = Value::Tuple(vec![Value::from(1), Value::from("a")]);
/// assert_eq!(v.repr(), "(1, 'a')");
/// assert_eq!(v.to_string(), "(1, 'a')");
/// assert_eq!(v.type_name(), "tuple");
///
/// // Move the elements out: `into_items` (or `std::mem::take` on a `&mut`).
/// let items = v.into_items().unwrap();
/// assert_eq!(items, [Value::from(1), Value::from("a")]);
/// ```
#[non_exhaustive]
pub enum Value {
    /// Python's `None`.
    None,
    /// `bool`.
    Bool(bool),
    /// `int`, any size.
    Int(Int),
    /// `float`.
    Float(f64),
    /// `complex`.
    Complex(Complex),
    /// `bytes`.
    Bytes(Vec<u8>),
    /// `str`.
    Str(String),
    /// `list`.
    List(Vec<Value>),
    /// `tuple`.
    Tuple(Vec<Value>),
    /// `dict`: (key, value) pairs in order; keys must be hashable to travel.
    Dict(Vec<(Value, Value)>),
    /// `set`: elements must be hashable to travel.
    Set(Vec<Value>),
    /// `frozenset`: elements must be hashable to travel.
    FrozenSet(Vec<Value>),
    /// A channel of the same gateway.
    Channel(ChannelRef),
}

/// A complex number (Python's `complex`).
///
/// # Examples
///
/// ```
/// use execnet_wire::{from_value, Complex, Value};
///
/// let c = Value::Complex(Complex::new(1.0, -2.0));
/// assert_eq!(c.repr(), "(1-2j)");
/// assert_eq!(from_value::<Complex>(c).unwrap().im, -2.0);
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Default)]
pub struct Complex {
    /// The real part.
    pub re: f64,
    /// The imaginary part.
    pub im: f64,
}

impl Complex {
    /// A complex number from its parts.
    pub fn new(re: f64, im: f64) -> Complex {
        Complex { re, im }
    }
}

/// The attachment a gateway puts on a [`ChannelRef`] (its channel handle).
pub type Attachment = Arc<dyn Any + Send + Sync>;

/// A channel inside a [`Value`]: its id, plus an optional attachment that the
/// gateway layer sets (the live channel handle) so a value can carry it.
///
/// Equality compares ids only. A channel handle of another crate crosses
/// serde as a `ChannelRef` carrying itself as the attachment: our
/// serializers and deserializers keep the attachment with the id (for one
/// call, and only for that id); other formats see the id alone.
///
/// # Examples
///
/// ```
/// use std::sync::Arc;
/// use execnet_wire::{ChannelRef, Item};
///
/// let handle = ChannelRef::new(3).with_attachment(Arc::new("the live handle"));
/// let item = Item::encode(&(1, &handle)).unwrap();
/// assert_eq!(item.channels(), [ChannelRef::new(3)]);
/// let (_, back): (i32, ChannelRef) = item.decode().unwrap();
/// let attached = back.attachment().and_then(|a| a.downcast_ref::<&str>());
/// assert_eq!(attached, Some(&"the live handle"));
/// // Other formats see the id, and keep nothing.
/// assert_eq!(serde_json::to_string(&handle).unwrap(), "3");
/// ```
#[derive(Clone)]
pub struct ChannelRef {
    id: u32,
    attachment: Option<Attachment>,
}

impl ChannelRef {
    /// A reference to channel `id`, without attachment.
    pub fn new(id: u32) -> ChannelRef {
        ChannelRef {
            id,
            attachment: None,
        }
    }

    /// The channel id.
    pub fn id(&self) -> u32 {
        self.id
    }

    /// This reference with `attachment` attached (replacing any previous one).
    pub fn with_attachment(mut self, attachment: Attachment) -> ChannelRef {
        self.attachment = Some(attachment);
        self
    }

    /// The attachment, if the gateway layer set one.
    pub fn attachment(&self) -> Option<&Attachment> {
        self.attachment.as_ref()
    }

    /// Removes and returns the attachment.
    pub fn take_attachment(&mut self) -> Option<Attachment> {
        self.attachment.take()
    }

    /// Replaces the attachment (`None` removes it).
    pub fn set_attachment(&mut self, attachment: Option<Attachment>) {
        self.attachment = attachment;
    }
}

impl PartialEq for ChannelRef {
    fn eq(&self, other: &ChannelRef) -> bool {
        self.id == other.id
    }
}

impl Eq for ChannelRef {}

impl fmt::Debug for ChannelRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "ChannelRef({})", self.id)
    }
}

thread_local! {
    /// The channel whose attachment is crossing serde right now on this
    /// thread (see [`Stash`]).
    static STASH: RefCell<Option<ChannelRef>> = const { RefCell::new(None) };
}

/// How a channel's attachment crosses serde, which carries only data.
///
/// A serializer or deserializer of this crate that is about to hand a
/// channel id through `serde` leaves the channel here for exactly the
/// duration of that one call: [`ChannelRef`]'s `Serialize` and our
/// deserializers (`from_value`, [`Item::decode`](crate::Item::decode))
/// hold a `Stash` while they call into serde, and the other side takes
/// the attachment by id. The guard clears the slot when it goes out of
/// scope, also on error or panic, so an attachment never outlives the call
/// (nothing keeps a gateway alive), and a taker asking for another id gets
/// nothing (no channel attaches to the wrong value).
pub(crate) struct Stash(());

impl Stash {
    /// Leaves `channel` for the call the guard spans.
    pub(crate) fn new(channel: ChannelRef) -> Stash {
        STASH.with(|slot| *slot.borrow_mut() = Some(channel));
        Stash(())
    }

    /// Takes the attachment left for channel `id`, if that is the channel
    /// left; clears the slot either way.
    pub(crate) fn take(id: u32) -> Option<Attachment> {
        let left = STASH.with(|slot| slot.borrow_mut().take())?;
        if left.id() == id {
            left.attachment
        } else {
            None
        }
    }
}

impl Drop for Stash {
    fn drop(&mut self) {
        // `try_with`: the thread-local may be gone during thread teardown.
        let _ = STASH.try_with(|slot| slot.borrow_mut().take());
    }
}

impl Value {
    /// The name of the Python type this value becomes: `"NoneType"`,
    /// `"bool"`, `"int"`, `"float"`, `"complex"`, `"bytes"`, `"str"`,
    /// `"list"`, `"tuple"`, `"dict"`, `"set"`, `"frozenset"`, `"Channel"`.
    pub fn type_name(&self) -> &'static str {
        match self {
            Value::None => "NoneType",
            Value::Bool(_) => "bool",
            Value::Int(_) => "int",
            Value::Float(_) => "float",
            Value::Complex(_) => "complex",
            Value::Bytes(_) => "bytes",
            Value::Str(_) => "str",
            Value::List(_) => "list",
            Value::Tuple(_) => "tuple",
            Value::Dict(_) => "dict",
            Value::Set(_) => "set",
            Value::FrozenSet(_) => "frozenset",
            Value::Channel(_) => "Channel",
        }
    }

    /// Calls `f` on every channel inside this value (dict keys included),
    /// in order, e.g. for the gateway to attach or resolve its handles.
    /// Works at any depth (no recursion).
    ///
    /// # Examples
    ///
    /// ```
    /// use execnet_wire::{ChannelRef, Value};
    ///
    /// let mut v = Value::Tuple(vec![Value::Channel(ChannelRef::new(2)), Value::from(7)]);
    /// let mut ids = Vec::new();
    /// v.visit_channels_mut(&mut |c| ids.push(c.id()));
    /// assert_eq!(ids, [2]);
    /// ```
    pub fn visit_channels_mut(&mut self, f: &mut dyn FnMut(&mut ChannelRef)) {
        let mut pending: Vec<&mut Value> = vec![self];
        while let Some(v) = pending.pop() {
            match v {
                Value::Channel(c) => f(c),
                Value::List(items)
                | Value::Tuple(items)
                | Value::Set(items)
                | Value::FrozenSet(items) => pending.extend(items.iter_mut().rev()),
                Value::Dict(pairs) => {
                    for (k, x) in pairs.iter_mut().rev() {
                        pending.push(x);
                        pending.push(k);
                    }
                }
                _ => {}
            }
        }
    }

    /// Whether Python could use this value as a dict key or set element:
    /// scalars, channels, frozensets, and tuples of those.
    ///
    /// A frozenset counts as hashable without looking inside: its elements
    /// are checked where it is encoded or decoded.
    pub fn is_hashable(&self) -> bool {
        unhashable_part(self).is_none()
    }

    /// For a `Dict`, the value of the first pair whose key is `Str(key)`.
    ///
    /// # Examples
    ///
    /// ```
    /// use execnet_wire::{to_value, Value};
    ///
    /// let info = to_value(&[("pid", 42)].into_iter().collect::<std::collections::BTreeMap<_, _>>()).unwrap();
    /// assert_eq!(info.get("pid"), Some(&Value::from(42)));
    /// assert_eq!(info.get("cwd"), None);
    /// ```
    pub fn get(&self, key: &str) -> Option<&Value> {
        match self {
            Value::Dict(pairs) => pairs
                .iter()
                .find(|(k, _)| matches!(k, Value::Str(s) if s == key))
                .map(|(_, v)| v),
            _ => None,
        }
    }

    /// The string, for a `Str`.
    pub fn as_str(&self) -> Option<&str> {
        match self {
            Value::Str(s) => Some(s),
            _ => None,
        }
    }

    /// The integer, for an `Int`.
    pub fn as_int(&self) -> Option<&Int> {
        match self {
            Value::Int(n) => Some(n),
            _ => None,
        }
    }

    /// The elements of a `List`, `Tuple`, `Set` or `FrozenSet`, moved out;
    /// `Err(self)` for anything else.
    pub fn into_items(mut self) -> Result<Vec<Value>, Value> {
        match &mut self {
            Value::List(items)
            | Value::Tuple(items)
            | Value::Set(items)
            | Value::FrozenSet(items) => Ok(std::mem::take(items)),
            _ => Err(self),
        }
    }

    /// The pairs of a `Dict`, moved out; `Err(self)` for anything else.
    pub fn into_pairs(mut self) -> Result<Vec<(Value, Value)>, Value> {
        match &mut self {
            Value::Dict(pairs) => Ok(std::mem::take(pairs)),
            _ => Err(self),
        }
    }

    /// The string of a `Str`, moved out; `Err(self)` for anything else.
    pub fn into_string(mut self) -> Result<String, Value> {
        match &mut self {
            Value::Str(s) => Ok(std::mem::take(s)),
            _ => Err(self),
        }
    }

    /// The bytes of a `Bytes`, moved out; `Err(self)` for anything else.
    pub fn into_bytes(mut self) -> Result<Vec<u8>, Value> {
        match &mut self {
            Value::Bytes(b) => Ok(std::mem::take(b)),
            _ => Err(self),
        }
    }

    /// A short description for error messages: the type and the start of
    /// the repr, e.g. `str 'abc'`, `int 300`, `None`.
    pub(crate) fn describe(&self) -> String {
        const MAX: usize = 40;
        if matches!(self, Value::None) {
            return "None".to_owned();
        }
        let mut repr = self.repr();
        if repr.len() > MAX {
            let mut cut = MAX;
            while !repr.is_char_boundary(cut) {
                cut -= 1;
            }
            repr.truncate(cut);
            repr.push_str("...");
        }
        format!("{} {}", self.type_name(), repr)
    }
}

/// The first part of `v` that Python cannot hash, if any (looking into
/// tuples, at any depth, without recursion).
pub(crate) fn unhashable_part(v: &Value) -> Option<&'static str> {
    let mut pending = vec![v];
    while let Some(v) = pending.pop() {
        match v {
            Value::List(_) | Value::Dict(_) | Value::Set(_) => return Some(v.type_name()),
            Value::Tuple(items) => pending.extend(items.iter().rev()),
            _ => {}
        }
    }
    None
}

macro_rules! value_from_int {
    ($($t:ty),*) => {$(
        impl From<$t> for Value {
            fn from(n: $t) -> Value {
                Value::Int(Int::from(n))
            }
        }
    )*};
}
value_from_int!(i8, i16, i32, i64, i128, isize, u16, u32, u64, u128, usize);

impl From<Int> for Value {
    fn from(n: Int) -> Value {
        Value::Int(n)
    }
}

impl From<bool> for Value {
    fn from(b: bool) -> Value {
        Value::Bool(b)
    }
}

impl From<f64> for Value {
    fn from(x: f64) -> Value {
        Value::Float(x)
    }
}

impl From<Complex> for Value {
    fn from(c: Complex) -> Value {
        Value::Complex(c)
    }
}

impl From<&str> for Value {
    fn from(s: &str) -> Value {
        Value::Str(s.to_owned())
    }
}

impl From<String> for Value {
    fn from(s: String) -> Value {
        Value::Str(s)
    }
}

impl From<Vec<Value>> for Value {
    /// A `List`.
    fn from(items: Vec<Value>) -> Value {
        Value::List(items)
    }
}

impl From<ChannelRef> for Value {
    fn from(c: ChannelRef) -> Value {
        Value::Channel(c)
    }
}

impl From<()> for Value {
    fn from((): ()) -> Value {
        Value::None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn channel_ref_equality_ignores_attachment() {
        let a = ChannelRef::new(3).with_attachment(Arc::new(5u8));
        assert_eq!(a, ChannelRef::new(3));
        assert_ne!(a, ChannelRef::new(5));
        assert_eq!(format!("{a:?}"), "ChannelRef(3)");
        assert_eq!(
            a.attachment().and_then(|x| x.downcast_ref::<u8>()),
            Some(&5)
        );
    }

    #[test]
    fn hashable() {
        assert!(Value::Tuple(vec![Value::None, Value::FrozenSet(vec![])]).is_hashable());
        assert!(!Value::Tuple(vec![Value::List(vec![])]).is_hashable());
        assert!(!Value::Set(vec![]).is_hashable());
    }

    #[test]
    fn visit_channels() {
        let mut v = Value::Dict(vec![(
            Value::Tuple(vec![Value::Channel(ChannelRef::new(1))]),
            Value::List(vec![Value::Channel(ChannelRef::new(2))]),
        )]);
        let mut seen = Vec::new();
        v.visit_channels_mut(&mut |c| seen.push(c.id()));
        assert_eq!(seen, [1, 2]);
    }

    #[test]
    fn describe_truncates() {
        assert_eq!(Value::from("abc").describe(), "str 'abc'");
        assert_eq!(Value::None.describe(), "None");
        let long = Value::from("é".repeat(100)).describe();
        assert!(long.ends_with("...") && long.len() < 60, "{long}");
    }
}
