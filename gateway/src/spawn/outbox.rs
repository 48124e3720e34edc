//! A remote spawner's control stream, written from any thread. Messages
//! queue whole and in order; the thread that queues one writes what the
//! stream takes at once (a round trip through a fork then costs no wake of
//! the driver thread), a task writes the rest when the stream would block.
//! [`MuxWriter`] is one forked worker's stdin on it: its bytes go out as
//! `D` messages, its end as `E`.

use std::io;
use std::pin::Pin;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::task::{Context, Poll, Waker};

use event_listener::{Event, EventListener};
use execnet_transport::BoxedWriter;
use futures_lite::{AsyncWrite, AsyncWriteExt, Future};

use super::spawner::{head, message, CHUNK};
use crate::runtime;

/// Queued and in-flight bytes past which a worker's writes wait.
const ROOM: usize = 1 << 20;

/// The write side of a remote spawner's control stream.
pub(super) struct Outbox {
    slot: Mutex<Slot>,
    /// Bytes were queued for the task, or written (room for waiting writers),
    /// or the stream ended.
    event: Event,
}

struct Slot {
    /// Whole messages not yet handed to the stream.
    queue: Vec<u8>,
    /// What the task is writing now.
    in_flight: usize,
    /// The stream, unless the task holds it (writing) or it ended.
    writer: Option<BoxedWriter>,
    /// Close the stream once the queue is written.
    closing: bool,
    /// The stream failed or was closed: nothing more goes out.
    ended: bool,
}

impl Outbox {
    /// An outbox on `writer`, with its writing task started.
    pub(super) fn new(writer: BoxedWriter) -> Arc<Outbox> {
        let outbox = Arc::new(Outbox {
            slot: Mutex::new(Slot {
                queue: Vec::new(),
                in_flight: 0,
                writer: Some(writer),
                closing: false,
                ended: false,
            }),
            event: Event::new(),
        });
        runtime::detach(write_task(outbox.clone()));
        outbox
    }

    fn lock(&self) -> MutexGuard<'_, Slot> {
        self.slot.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Queue `bytes` (whole messages); write what the stream takes now.
    pub(super) fn push(&self, bytes: &[u8]) -> io::Result<()> {
        let mut slot = self.lock();
        self.push_locked(&mut slot, bytes)
    }

    fn push_locked(&self, slot: &mut Slot, bytes: &[u8]) -> io::Result<()> {
        if slot.ended || slot.closing {
            return Err(io::ErrorKind::BrokenPipe.into());
        }
        slot.queue.extend_from_slice(bytes);
        slot.write_now();
        if !slot.queue.is_empty() {
            self.event.notify(usize::MAX);
        }
        Ok(())
    }

    /// End the stream (the spawner exits when it sees the end) once what
    /// is queued is written.
    pub(super) fn close(&self) {
        self.lock().closing = true;
        self.event.notify(usize::MAX);
    }

    /// The stream is gone (the spawner ended): drop what waits.
    pub(super) fn end(&self) {
        {
            let mut slot = self.lock();
            slot.ended = true;
            slot.queue = Vec::new();
        }
        self.event.notify(usize::MAX);
    }
}

impl Slot {
    /// Write from the queue while the stream takes it without waiting (the
    /// task, holding the writer, does nothing here).
    fn write_now(&mut self) {
        let Some(writer) = self.writer.as_mut() else {
            return;
        };
        let mut cx = Context::from_waker(Waker::noop());
        let mut done = 0;
        while done < self.queue.len() {
            match writer.as_mut().poll_write(&mut cx, &self.queue[done..]) {
                Poll::Ready(Ok(n)) if n > 0 => done += n,
                // would block, or failed: the task writes (or finds the error)
                _ => break,
            }
        }
        self.queue.drain(..done);
    }
}

/// Write what the threads could not, in order; close the stream when asked.
async fn write_task(outbox: Arc<Outbox>) {
    enum Next {
        Write(BoxedWriter),
        Wait(EventListener),
        Close(Option<BoxedWriter>),
        Stop,
    }
    let mut buf = Vec::new();
    loop {
        let next = {
            let listener = outbox.event.listen();
            let mut slot = outbox.lock();
            if slot.ended {
                Next::Stop
            } else if !slot.queue.is_empty() {
                match slot.writer.take() {
                    Some(writer) => {
                        std::mem::swap(&mut buf, &mut slot.queue);
                        slot.in_flight = buf.len();
                        Next::Write(writer)
                    }
                    None => Next::Stop,
                }
            } else if slot.closing {
                slot.ended = true;
                Next::Close(slot.writer.take())
            } else {
                Next::Wait(listener)
            }
        };
        let mut writer = match next {
            Next::Stop => return,
            Next::Wait(listener) => {
                listener.await;
                continue;
            }
            Next::Close(writer) => {
                outbox.event.notify(usize::MAX);
                if let Some(mut w) = writer {
                    let _ = w.close().await;
                }
                return;
            }
            Next::Write(writer) => writer,
        };
        let written = async {
            writer.write_all(&buf).await?;
            writer.flush().await
        }
        .await;
        buf.clear();
        {
            let mut slot = outbox.lock();
            slot.in_flight = 0;
            if written.is_ok() {
                slot.writer = Some(writer);
            } else {
                slot.ended = true;
                slot.queue = Vec::new();
            }
        }
        outbox.event.notify(usize::MAX);
    }
}

/// A forked remote worker's stdin: writes become `D` messages on the
/// control stream, its close (or drop) an `E`.
pub(super) struct MuxWriter {
    outbox: Arc<Outbox>,
    gid: u32,
    room: Option<EventListener>,
    closed: bool,
}

impl MuxWriter {
    pub(super) fn new(outbox: Arc<Outbox>, gid: u32) -> MuxWriter {
        MuxWriter {
            outbox,
            gid,
            room: None,
            closed: false,
        }
    }
}

impl AsyncWrite for MuxWriter {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let this = &mut *self;
        if this.closed {
            return Poll::Ready(Err(io::ErrorKind::BrokenPipe.into()));
        }
        if buf.is_empty() {
            return Poll::Ready(Ok(0));
        }
        let n = buf.len().min(CHUNK);
        loop {
            {
                let mut slot = this.outbox.lock();
                if slot.ended {
                    return Poll::Ready(Err(io::ErrorKind::BrokenPipe.into()));
                }
                if slot.queue.len() + slot.in_flight < ROOM {
                    let message = message(b'D', this.gid, &buf[..n]);
                    this.room = None;
                    return Poll::Ready(this.outbox.push_locked(&mut slot, &message).map(|()| n));
                }
            }
            match this.room.as_mut() {
                None => this.room = Some(this.outbox.event.listen()),
                Some(listener) => {
                    if Pin::new(listener).poll(cx).is_pending() {
                        return Poll::Pending;
                    }
                    this.room = None;
                }
            }
        }
    }

    fn poll_flush(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        // Queued is as far as a write goes: the outbox's task writes on.
        Poll::Ready(Ok(()))
    }

    fn poll_close(mut self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        if !self.closed {
            self.closed = true;
            let _ = self.outbox.push(&head(b'E', self.gid, 0));
        }
        Poll::Ready(Ok(()))
    }
}

impl Drop for MuxWriter {
    fn drop(&mut self) {
        if !self.closed {
            let _ = self.outbox.push(&head(b'E', self.gid, 0));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use futures_lite::future::block_on;

    /// A stream that takes at most 7 bytes a call and says "would block"
    /// every third call (waking at once), so writes are split and cross
    /// between the threads and the task.
    struct Choppy {
        got: Arc<Mutex<Vec<u8>>>,
        calls: usize,
    }

    impl AsyncWrite for Choppy {
        fn poll_write(
            mut self: Pin<&mut Self>,
            cx: &mut Context<'_>,
            buf: &[u8],
        ) -> Poll<io::Result<usize>> {
            self.calls += 1;
            if self.calls % 3 == 0 {
                cx.waker().wake_by_ref();
                return Poll::Pending;
            }
            let n = buf.len().min(7);
            self.got.lock().unwrap().extend_from_slice(&buf[..n]);
            Poll::Ready(Ok(n))
        }
        fn poll_flush(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<io::Result<()>> {
            Poll::Ready(Ok(()))
        }
        fn poll_close(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<io::Result<()>> {
            Poll::Ready(Ok(()))
        }
    }

    #[test]
    fn messages_of_many_writers_arrive_whole_and_in_each_ones_order() {
        let got = Arc::new(Mutex::new(Vec::new()));
        let outbox = Outbox::new(Box::pin(Choppy {
            got: got.clone(),
            calls: 0,
        }));
        let writers: Vec<_> = (1..=4u32)
            .map(|gid| {
                let outbox = outbox.clone();
                std::thread::spawn(move || {
                    let mut w = MuxWriter::new(outbox, gid);
                    block_on(async {
                        for i in 0..500u32 {
                            let item = format!("{gid}:{i};").repeat(1 + (i % 5) as usize);
                            w.write_all(item.as_bytes()).await.expect("queued");
                        }
                        w.close().await.expect("closed");
                    });
                })
            })
            .collect();
        for w in writers {
            w.join().expect("writer thread");
        }
        outbox.close();
        // The task ends the stream once everything queued is written.
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
        while !outbox.lock().ended {
            assert!(
                std::time::Instant::now() < deadline,
                "the queue was never written out"
            );
            std::thread::sleep(std::time::Duration::from_millis(5));
        }
        // Parse the stream: every message whole, each gateway's in order.
        let bytes = got.lock().unwrap().clone();
        let mut per_gid: std::collections::HashMap<u32, Vec<u8>> = Default::default();
        let mut ended = Vec::new();
        let mut p = 0;
        while p < bytes.len() {
            let (op, rest) = (bytes[p], &bytes[p + 1..p + 9]);
            let gid = u32::from_le_bytes([rest[0], rest[1], rest[2], rest[3]]);
            let len = u32::from_le_bytes([rest[4], rest[5], rest[6], rest[7]]) as usize;
            let payload = &bytes[p + 9..p + 9 + len];
            match op {
                b'D' => {
                    assert!(!ended.contains(&gid), "data after the end of {gid}");
                    per_gid.entry(gid).or_default().extend_from_slice(payload);
                }
                b'E' => ended.push(gid),
                other => panic!("unexpected message {other}"),
            }
            p += 9 + len;
        }
        for gid in 1..=4u32 {
            let want: String = (0..500u32)
                .map(|i| format!("{gid}:{i};").repeat(1 + (i % 5) as usize))
                .collect();
            assert_eq!(per_gid[&gid], want.as_bytes(), "gateway {gid}'s bytes");
        }
    }
}
