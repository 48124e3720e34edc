//! `Decoder`: the sans-IO frame decoder (feed bytes, pop messages).

use std::fmt;

use crate::{decode_message, DecodeError, Message, DEFAULT_MAX_FRAME};

/// How many bytes of the stream's start a decoder keeps for error messages.
const FIRST_BYTES_KEPT: usize = 256;
/// The least spare room `read_buf` hands out.
const MIN_READ: usize = 16 * 1024;
/// An empty buffer larger than this is given back to the allocator.
const SHRINK_ABOVE: usize = 4 * 1024 * 1024;

/// One decoded frame: the message and its body length (the flow-control cost).
///
/// # Examples
///
/// ```
/// use execnet_wire::{encode_frame, Decoder, Item, Message};
///
/// let mut stream = Vec::new();
/// let msg = Message::ChannelData { channel: 1, data: Item::encode("hi").unwrap() };
/// encode_frame(&msg, &mut stream).unwrap();
/// let mut decoder = Decoder::default();
/// decoder.feed(&stream);
/// let frame = decoder.next_frame().unwrap().unwrap();
/// assert_eq!(frame.len, 6); // the body: 05 01 07 02 'h' 'i'
/// assert_eq!(frame.message, msg);
/// ```
#[derive(Debug, Clone, PartialEq)]
pub struct Frame {
    /// The message.
    pub message: Message,
    /// The body length `N` (length prefix excluded).
    pub len: u32,
}

/// An incremental frame decoder: feed it bytes as they arrive, pop messages.
///
/// It checks each frame's announced length against its maximum before
/// making room for the frame, and never panics on malformed input: the first
/// error is returned by [`next_frame`](Decoder::next_frame), and again by
/// every later call (the connection is over).
///
/// Two ways to put bytes in: [`feed`](Decoder::feed) copies a slice the
/// caller read elsewhere; [`read_buf`](Decoder::read_buf) and
/// [`commit`](Decoder::commit) let the caller read straight into the
/// decoder's buffer, so a bulk payload is copied once (from that buffer into
/// the decoded `Value`). Consumed bytes are dropped lazily, when room is
/// needed.
///
/// # Examples
///
/// ```
/// use execnet_wire::{encode_frame, Decoder, Message};
///
/// let mut stream = Vec::new();
/// encode_frame(&Message::Terminate, &mut stream).unwrap();
/// encode_frame(&Message::Status { channel: 1 }, &mut stream).unwrap();
///
/// let mut decoder = Decoder::default();
/// decoder.feed(&stream[..3]);
/// assert_eq!(decoder.next_frame(), Ok(None)); // needs more bytes
/// // Read the rest straight into the decoder's buffer.
/// let rest = &stream[3..];
/// decoder.read_buf(rest.len())[..rest.len()].copy_from_slice(rest);
/// decoder.commit(rest.len());
/// assert_eq!(decoder.next_frame().unwrap().unwrap().message, Message::Terminate);
/// assert_eq!(decoder.next_frame().unwrap().unwrap().message, Message::Status { channel: 1 });
/// assert_eq!(decoder.next_frame(), Ok(None));
/// assert_eq!(decoder.finish(), Ok(()));
/// ```
pub struct Decoder {
    /// Initialized storage: buffered bytes are `buf[start..filled]`.
    buf: Vec<u8>,
    start: usize,
    filled: usize,
    max_frame: u32,
    failed: Option<DecodeError>,
    first: Vec<u8>,
}

impl fmt::Debug for Decoder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Not the buffer: it may hold megabytes.
        f.debug_struct("Decoder")
            .field("buffered", &self.buffered())
            .field("capacity", &self.buf.len())
            .field("max_frame", &self.max_frame)
            .field("failed", &self.failed)
            .finish_non_exhaustive()
    }
}

impl Default for Decoder {
    /// A decoder accepting frames up to [`DEFAULT_MAX_FRAME`].
    fn default() -> Decoder {
        Decoder::new(DEFAULT_MAX_FRAME)
    }
}

impl Decoder {
    /// A decoder accepting frame bodies of at most `max_frame` bytes; a frame
    /// announcing more is refused ([`DecodeError::FrameTooLarge`]) before
    /// any room is made for it. The protocol's default is
    /// [`DEFAULT_MAX_FRAME`] (256 MiB); announce the limit you choose in
    /// your [`Hello`](crate::Hello), so the peer never sends more.
    ///
    /// # Examples
    ///
    /// ```
    /// use execnet_wire::{DecodeError, Decoder};
    ///
    /// let mut decoder = Decoder::new(1024);
    /// decoder.feed(&[0x00, 0x10, 0x00, 0x00]); // a frame of 4096 bytes
    /// assert_eq!(
    ///     decoder.next_frame(),
    ///     Err(DecodeError::FrameTooLarge { len: 4096, max: 1024 })
    /// );
    /// ```
    pub fn new(max_frame: u32) -> Decoder {
        Decoder {
            buf: Vec::new(),
            start: 0,
            filled: 0,
            max_frame,
            failed: None,
            first: Vec::new(),
        }
    }

    /// The largest frame body accepted.
    pub fn max_frame(&self) -> u32 {
        self.max_frame
    }

    /// Appends bytes received from the peer.
    pub fn feed(&mut self, bytes: &[u8]) {
        self.keep_first(bytes);
        self.make_room(bytes.len());
        self.buf[self.filled..self.filled + bytes.len()].copy_from_slice(bytes);
        self.filled += bytes.len();
    }

    /// Spare room at the end of the buffer to read into, at least `min`
    /// bytes, and more when the frame being received is known to need more
    /// (then the whole frame fits). Report what was written with
    /// [`commit`](Decoder::commit).
    pub fn read_buf(&mut self, min: usize) -> &mut [u8] {
        let want = min.max(self.frame_missing()).max(1);
        self.make_room(want);
        &mut self.buf[self.filled..]
    }

    /// Marks `n` bytes at the start of the last [`read_buf`](Decoder::read_buf)
    /// slice as received.
    ///
    /// # Panics
    ///
    /// If `n` is larger than that slice (a bug in the caller).
    pub fn commit(&mut self, n: usize) {
        assert!(
            n <= self.buf.len() - self.filled,
            "Decoder::commit({n}) beyond the read_buf slice"
        );
        if self.first.len() < FIRST_BYTES_KEPT {
            let end = self.filled + n.min(FIRST_BYTES_KEPT - self.first.len());
            self.first.extend_from_slice(&self.buf[self.filled..end]);
        }
        self.filled += n;
    }

    /// Bytes received and not yet returned as frames.
    pub fn buffered(&self) -> usize {
        self.filled - self.start
    }

    /// The next complete frame: `Ok(None)` when more bytes are needed. After
    /// an error the decoder stays failed and returns that error again.
    pub fn next_frame(&mut self) -> Result<Option<Frame>, DecodeError> {
        if let Some(e) = &self.failed {
            return Err(e.clone());
        }
        let Some(len) = self.announced_len() else {
            return Ok(None);
        };
        if len > self.max_frame {
            return Err(self.fail(DecodeError::FrameTooLarge {
                len,
                max: self.max_frame,
            }));
        }
        let total = 4 + len as usize;
        if self.buffered() < total {
            return Ok(None);
        }
        let body = &self.buf[self.start + 4..self.start + total];
        match decode_message(body) {
            Ok(message) => {
                self.start += total;
                if self.start == self.filled {
                    self.reset();
                }
                Ok(Some(Frame { message, len }))
            }
            Err(e) => Err(self.fail(e)),
        }
    }

    /// Call at the end of the stream: `Err(Truncated)` if it ended inside a
    /// frame, the decoder's error if it failed, `Ok(())` otherwise.
    pub fn finish(&self) -> Result<(), DecodeError> {
        if let Some(e) = &self.failed {
            return Err(e.clone());
        }
        let buffered = self.buffered();
        if buffered == 0 {
            return Ok(());
        }
        let expected = match self.announced_len() {
            Some(len) => 4 + len as usize,
            None => 4,
        };
        Err(DecodeError::Truncated { buffered, expected })
    }

    /// The first bytes the peer ever sent (up to 256), e.g. to quote with
    /// [`quote_bytes`] when its first frame is not a `Hello`.
    pub fn first_bytes(&self) -> &[u8] {
        &self.first
    }

    fn announced_len(&self) -> Option<u32> {
        if self.buffered() < 4 {
            return None;
        }
        let mut word = [0; 4];
        word.copy_from_slice(&self.buf[self.start..self.start + 4]);
        Some(u32::from_le_bytes(word))
    }

    /// Bytes still missing from the frame being received (0 if unknown or
    /// refused).
    fn frame_missing(&self) -> usize {
        match self.announced_len() {
            Some(len) if len <= self.max_frame => {
                (4 + len as usize).saturating_sub(self.buffered())
            }
            Some(_) => 0,
            None => 4 - self.buffered(),
        }
    }

    fn fail(&mut self, e: DecodeError) -> DecodeError {
        self.failed = Some(e.clone());
        e
    }

    fn reset(&mut self) {
        self.start = 0;
        self.filled = 0;
        if self.buf.len() > SHRINK_ABOVE {
            self.buf = Vec::new();
        }
    }

    /// Ensures at least `n` bytes of spare room after `filled`, moving the
    /// buffered bytes to the front first if that is enough.
    fn make_room(&mut self, n: usize) {
        if self.buf.len() - self.filled >= n {
            return;
        }
        if self.start > 0 {
            self.buf.copy_within(self.start..self.filled, 0);
            self.filled -= self.start;
            self.start = 0;
            if self.buf.len() - self.filled >= n {
                return;
            }
        }
        let needed = self.filled + n;
        // Grow at least geometrically for small reads; exactly for a known frame.
        let target = needed
            .max(MIN_READ)
            .max(if n < MIN_READ { self.buf.len() * 2 } else { 0 });
        self.buf.resize(target, 0);
    }

    fn keep_first(&mut self, bytes: &[u8]) {
        if self.first.len() < FIRST_BYTES_KEPT {
            let n = bytes.len().min(FIRST_BYTES_KEPT - self.first.len());
            self.first.extend_from_slice(&bytes[..n]);
        }
    }
}

/// Bytes written as Python writes a `bytes` literal (`b'bash: python3: not
/// found\n'`), for quoting what a peer sent in error messages; at most 256
/// bytes are shown, then `...`.
///
/// # Examples
///
/// ```
/// use execnet_wire::quote_bytes;
///
/// assert_eq!(quote_bytes(b"bash: python3: not found\n"), "b'bash: python3: not found\\n'");
/// assert!(quote_bytes(&[0; 300]).ends_with("'..."));
/// ```
pub fn quote_bytes(bytes: &[u8]) -> String {
    let shown = &bytes[..bytes.len().min(FIRST_BYTES_KEPT)];
    let mut s = crate::Value::Bytes(shown.to_vec()).repr();
    if bytes.len() > FIRST_BYTES_KEPT {
        s.push_str("...");
    }
    s
}

/// The body of the `wire_decode` fuzz target: decodes arbitrary bytes, both
/// as a frame body and as a stream fed in a few pieces, and checks that
/// every decoded message re-encodes to bytes that decode to the same message.
/// Panics only on a bug in this crate.
pub fn fuzz_decode(data: &[u8]) {
    if let Ok(message) = decode_message(data) {
        check_roundtrip(&message);
    }
    // Split points taken from the data itself, so the fuzzer explores them.
    let a = data.first().map_or(0, |&b| usize::from(b)) % (data.len() + 1);
    let b = a + data.get(1).map_or(0, |&b| usize::from(b)) % (data.len() - a + 1);
    // A small limit: frames above it are refused before any room is made.
    let mut decoder = Decoder::new(64 * 1024);
    for (i, piece) in [&data[..a], &data[a..b], &data[b..]]
        .into_iter()
        .enumerate()
    {
        if i == 1 {
            let room = decoder.read_buf(piece.len());
            room[..piece.len()].copy_from_slice(piece);
            decoder.commit(piece.len());
        } else {
            decoder.feed(piece);
        }
        loop {
            match decoder.next_frame() {
                Ok(Some(frame)) => check_roundtrip(&frame.message),
                Ok(None) => break,
                Err(_) => return,
            }
        }
    }
    let _ = decoder.finish();
}

fn check_roundtrip(message: &Message) {
    let mut first = Vec::new();
    let len = crate::encode_frame_limited(message, &mut first, u32::MAX)
        .expect("a decoded message re-encodes");
    assert_eq!(u64::from(len), crate::encoded_len(message));
    let again = decode_message(&first[4..]).expect("a re-encoded message decodes");
    let mut second = Vec::new();
    crate::encode_frame_limited(&again, &mut second, u32::MAX).expect("re-encodes");
    assert_eq!(first, second, "re-encoding is not stable");
    // An item is forwarded as it came (a varint may be longer than it needs
    // to be); its value re-encodes canonically, and postcard, through the
    // derived impls, writes exactly that.
    let canonical = match message {
        Message::ChannelData { channel, data } => match data.to_value() {
            Ok(value) => {
                let item = crate::Item::from_value(&value).expect("a decoded value encodes");
                check_item(&item, value);
                Some(Message::ChannelData {
                    channel: *channel,
                    data: item,
                })
            }
            // Over the Value budget: neither side can build the Value.
            Err(_) => None,
        },
        other => Some(other.clone()),
    };
    if let Some(canonical) = canonical {
        let mut expected = Vec::new();
        crate::encode_frame_limited(&canonical, &mut expected, u32::MAX).expect("encodes");
        let body = postcard::to_stdvec(message).expect("postcard encodes a decoded message");
        assert_eq!(body, expected[4..], "postcard disagrees with encode_frame");
    }
}

/// A canonical item and its value: decoding straight from the bytes, and
/// converting through serde, give that value again.
fn check_item(item: &crate::Item, value: crate::Value) {
    let _ = value.repr();
    let direct: crate::Value = item.decode().expect("decodes as it did");
    assert_eq!(
        crate::Item::from_value(&direct).as_ref(),
        Ok(item),
        "decoding changed the value"
    );
    let through_serde: crate::Value = crate::from_value(value).expect("Value converts to Value");
    let back = crate::to_value(&through_serde).expect("Value converts to Value");
    assert_eq!(
        crate::Item::from_value(&back).as_ref(),
        Ok(item),
        "serde round trip changed the value"
    );
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{encode_frame, Item, Value};

    fn frame(msg: &Message) -> Vec<u8> {
        let mut out = Vec::new();
        encode_frame(msg, &mut out).expect("encodes");
        out
    }

    #[test]
    fn byte_at_a_time() {
        let msgs = [
            Message::Terminate,
            Message::ChannelData {
                channel: 7,
                data: Item::encode(serde_bytes::Bytes::new(&[5; 70_000])).expect("encodes"),
            },
            Message::Status { channel: 1 },
        ];
        let stream: Vec<u8> = msgs.iter().flat_map(frame).collect();
        let mut d = Decoder::default();
        let mut got = Vec::new();
        for b in &stream {
            d.feed(std::slice::from_ref(b));
            while let Some(f) = d.next_frame().expect("valid") {
                got.push(f.message);
            }
        }
        assert_eq!(got, msgs);
        assert_eq!(d.buffered(), 0);
        assert_eq!(d.finish(), Ok(()));
    }

    #[test]
    fn read_buf_offers_whole_frame() {
        let stream = frame(&Message::ChannelData {
            channel: 1,
            data: Item::from_value(&Value::Bytes(vec![1; 1 << 20])).expect("encodes"),
        });
        let mut d = Decoder::default();
        d.feed(&stream[..10]);
        let room = d.read_buf(1);
        assert!(room.len() >= stream.len() - 10);
        room[..stream.len() - 10].copy_from_slice(&stream[10..]);
        d.commit(stream.len() - 10);
        assert_eq!(
            d.next_frame().expect("valid").map(|f| f.len),
            Some(stream.len() as u32 - 4)
        );
    }

    #[test]
    fn oversized_frame_fails_and_stays_failed() {
        let mut d = Decoder::new(10);
        d.feed(&[11, 0, 0, 0]);
        let e = DecodeError::FrameTooLarge { len: 11, max: 10 };
        assert_eq!(d.next_frame(), Err(e.clone()));
        d.feed(&[0; 20]);
        assert_eq!(d.next_frame(), Err(e.clone()));
        assert_eq!(d.finish(), Err(e));
    }

    #[test]
    fn truncated_reports() {
        let mut d = Decoder::default();
        d.feed(&[5, 0]);
        assert_eq!(
            d.finish(),
            Err(DecodeError::Truncated {
                buffered: 2,
                expected: 4
            })
        );
        d.feed(&[0, 0, 3]);
        assert_eq!(d.next_frame(), Ok(None));
        assert_eq!(
            d.finish(),
            Err(DecodeError::Truncated {
                buffered: 5,
                expected: 9
            })
        );
    }

    #[test]
    fn first_bytes_quoted() {
        let mut d = Decoder::default();
        d.feed(b"bash: python3: not found\n");
        assert_eq!(
            quote_bytes(d.first_bytes()),
            "b'bash: python3: not found\\n'"
        );
        assert!(d.next_frame().is_err());
        assert!(format!("{d:?}").starts_with("Decoder { buffered: 25,"));
        assert!(quote_bytes(&[b'a'; 300]).ends_with("aa'..."));
    }

    #[test]
    fn fuzz_body_smoke() {
        fuzz_decode(&[]);
        fuzz_decode(&[1, 0, 0, 0, 3]);
        fuzz_decode(&[5, 1, 10, 1, 9, 1, 13, 4, 12, 0]);
        fuzz_decode(&frame(&Message::Hello(crate::Hello::default())));
        // A value tag written as a two-byte varint: forwarded as it came.
        fuzz_decode(&[5, 0, 0x80, 0]);
    }
}
