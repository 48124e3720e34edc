//! The messages of the protocol that `remote.py` describes, as the sending
//! side builds and checks them.

use serde::Deserialize;

use crate::{from_value, Value};

/// A SHA-256 digest.
pub(crate) type Digest = [u8; 32];

/// A checked reply of the receiving end.
pub(crate) enum Reply {
    Want(Vec<(usize, Option<Digest>)>),
    Compared,
    Ack(Vec<usize>),
    Done(RemoteStats),
}

/// What the receiving end counted.
#[derive(Debug, Default, Deserialize)]
pub(crate) struct RemoteStats {
    #[serde(default)]
    pub same: u64,
    #[serde(default)]
    pub dirs: u64,
    #[serde(default)]
    pub links: u64,
    #[serde(default)]
    pub deleted: u64,
}

/// A message: a tuple of the tag and the rest.
pub(crate) fn tagged(tag: &str, rest: Vec<Value>) -> Value {
    let mut items = Vec::with_capacity(rest.len() + 1);
    items.push(Value::from(tag));
    items.extend(rest);
    Value::Tuple(items)
}

/// The rules a receiving end must keep: ask for each file at most once,
/// acknowledge only files asked for, once each; `compared` once; `done`
/// last, after all of that.
#[derive(Default)]
pub(crate) struct Checker {
    /// Per file number (grown as the walk finds files): asked for, acked.
    wanted: Vec<bool>,
    acked: Vec<bool>,
    open: usize,
    compared: bool,
    done: bool,
}

impl Checker {
    /// Check `value`; `files` is how many files the walk has found.
    pub(crate) fn reply(&mut self, value: Value, files: usize) -> Result<Reply, String> {
        if self.wanted.len() < files {
            self.wanted.resize(files, false);
            self.acked.resize(files, false);
        }
        let bad = |value: &Value| format!("unexpected reply {}", short_repr(value));
        if self.done {
            return Err(format!("a reply after done: {}", short_repr(&value)));
        }
        let Value::Tuple(items) = &value else {
            return Err(bad(&value));
        };
        match (items.first().and_then(Value::as_str), items.len()) {
            (Some("want"), 2) => {
                let Value::List(list) = &items[1] else {
                    return Err(bad(&value));
                };
                let mut wants = Vec::with_capacity(list.len());
                for want in list {
                    let parsed = match want {
                        Value::Tuple(pair) if pair.len() == 2 => {
                            let digest = match &pair[1] {
                                Value::None => Some(None),
                                Value::Bytes(b) => Digest::try_from(b.as_slice()).ok().map(Some),
                                _ => None,
                            };
                            self.index(&pair[0]).zip(digest)
                        }
                        _ => None,
                    };
                    let Some((index, digest)) = parsed else {
                        return Err(format!("bad request {}", short_repr(want)));
                    };
                    if self.wanted[index] || self.compared {
                        return Err(format!("file {index} asked for twice or too late"));
                    }
                    self.wanted[index] = true;
                    self.open += 1;
                    wants.push((index, digest));
                }
                Ok(Reply::Want(wants))
            }
            (Some("compared"), 1) if !self.compared => {
                self.compared = true;
                Ok(Reply::Compared)
            }
            (Some("ack"), 2) => {
                let Value::List(list) = &items[1] else {
                    return Err(bad(&value));
                };
                let mut acks = Vec::with_capacity(list.len());
                for ack in list {
                    match self.index(ack) {
                        Some(index) if self.wanted[index] && !self.acked[index] => {
                            self.acked[index] = true;
                            self.open -= 1;
                            acks.push(index);
                        }
                        _ => {
                            return Err(format!(
                                "ack of a file not asked for (or acked before): {}",
                                short_repr(ack)
                            ))
                        }
                    }
                }
                Ok(Reply::Ack(acks))
            }
            (Some("done"), 2) if self.compared && self.open == 0 => {
                self.done = true;
                let stats = from_value(items[1].clone())
                    .map_err(|e| format!("bad statistics in done: {e}"))?;
                Ok(Reply::Done(stats))
            }
            (Some("done"), 2) => Err(format!(
                "done with {} files still open{}",
                self.open,
                if self.compared {
                    ""
                } else {
                    " and before comparing"
                }
            )),
            _ => Err(bad(&value)),
        }
    }

    /// A file number of our tree.
    fn index(&self, value: &Value) -> Option<usize> {
        let index = usize::try_from(value.as_int()?.to_u64()?).ok()?;
        (index < self.wanted.len()).then_some(index)
    }
}

fn short_repr(value: &Value) -> String {
    const MAX: usize = 120;
    let mut repr = value.repr();
    if repr.len() > MAX {
        let mut cut = MAX;
        while !repr.is_char_boundary(cut) {
            cut -= 1;
        }
        repr.truncate(cut);
        repr.push_str("...");
    }
    repr
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tuple(items: Vec<Value>) -> Value {
        Value::Tuple(items)
    }

    fn want(pairs: &[(i64, Option<&[u8]>)]) -> Value {
        let list = pairs
            .iter()
            .map(|(i, d)| {
                let digest = d.map_or(Value::None, |d| Value::Bytes(d.to_vec()));
                tuple(vec![Value::from(*i), digest])
            })
            .collect();
        tagged("want", vec![Value::List(list)])
    }

    fn ack(indices: &[i64]) -> Value {
        let list = indices.iter().map(|i| Value::from(*i)).collect();
        tagged("ack", vec![Value::List(list)])
    }

    fn done() -> Value {
        tagged(
            "done",
            vec![Value::Dict(vec![(Value::from("same"), Value::from(1))])],
        )
    }

    #[test]
    fn a_well_behaved_far_side_passes() {
        let mut check = Checker::default();
        let digest = [7u8; 32];
        assert!(matches!(
            check.reply(want(&[(0, None), (2, Some(&digest))]), 3),
            Ok(Reply::Want(w)) if w == [(0, None), (2, Some(digest))]
        ));
        assert!(matches!(check.reply(ack(&[2]), 3), Ok(Reply::Ack(a)) if a == [2]));
        assert!(matches!(
            check.reply(tagged("compared", vec![]), 3),
            Ok(Reply::Compared)
        ));
        assert!(matches!(check.reply(ack(&[0]), 3), Ok(Reply::Ack(_))));
        assert!(matches!(check.reply(done(), 3), Ok(Reply::Done(s)) if s.same == 1));
    }

    #[test]
    fn lies_are_protocol_errors() {
        let bad_digest = [1u8; 5];
        let cases: Vec<(Vec<Value>, &str)> = vec![
            (vec![want(&[(3, None)])], "bad request"),
            (vec![want(&[(-1, None)])], "bad request"),
            (vec![want(&[(0, Some(&bad_digest))])], "bad request"),
            (vec![want(&[(0, None), (0, None)])], "twice"),
            (vec![want(&[(0, None)]), want(&[(0, None)])], "twice"),
            (vec![ack(&[1])], "not asked for"),
            (
                vec![want(&[(1, None)]), ack(&[1]), ack(&[1])],
                "acked before",
            ),
            (
                vec![tagged("compared", vec![]), want(&[(0, None)])],
                "too late",
            ),
            (
                vec![tagged("compared", vec![]), tagged("compared", vec![])],
                "unexpected",
            ),
            (vec![done()], "before comparing"),
            (
                vec![want(&[(0, None)]), tagged("compared", vec![]), done()],
                "still open",
            ),
            (
                vec![tagged("compared", vec![]), done(), ack(&[])],
                "after done",
            ),
            (vec![Value::from("want")], "unexpected reply"),
            (vec![tagged("surprise", vec![])], "unexpected reply"),
            (
                vec![tagged("done", vec![Value::from(1)])],
                "before comparing",
            ),
        ];
        for (replies, expected) in cases {
            let mut check = Checker::default();
            let err = replies
                .iter()
                .find_map(|r| check.reply(r.clone(), 2).err())
                .unwrap_or_else(|| panic!("{replies:?} passed"));
            assert!(err.contains(expected), "{replies:?}: {err}");
        }
        let mut check = Checker::default();
        check.reply(tagged("compared", vec![]), 0).unwrap();
        let err = check
            .reply(tagged("done", vec![Value::from(1)]), 0)
            .err()
            .unwrap();
        assert!(err.contains("bad statistics"), "{err}");
    }

    #[test]
    fn a_long_reply_is_shortened_in_messages() {
        let long = Value::Str("x".repeat(10_000));
        let err = Checker::default().reply(long, 1).err().unwrap();
        assert!(err.len() < 200, "{err}");
    }
}
