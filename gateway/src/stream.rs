//! A [`Channel`] as a futures `Stream` of items, and as `AsyncRead` /
//! `AsyncWrite` byte streams (execnet's `makefile('r')` / `makefile('w')`).

use std::pin::Pin;
use std::task::{Context, Poll};

use execnet_proto::SendOutcome;
use execnet_wire::{Item, Value};
use futures_core::Stream;

use crate::channel::Channel;
use crate::error::{Error, Result};

impl Stream for Channel {
    type Item = Result<Value>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        loop {
            match self.try_receive() {
                Ok(Some(item)) => return Poll::Ready(Some(item.into_value().map_err(Error::from))),
                Ok(None) => {}
                Err(Error::Closed) => return Poll::Ready(None),
                Err(e) => return Poll::Ready(Some(Err(e))),
            }
            if self.poll_listener(cx).is_pending() {
                return Poll::Pending;
            }
        }
    }
}

impl futures_io::AsyncRead for Channel {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut [u8],
    ) -> Poll<std::io::Result<usize>> {
        loop {
            if self.read_pos < self.read_buf.len() {
                let n = buf.len().min(self.read_buf.len() - self.read_pos);
                let start = self.read_pos;
                buf[..n].copy_from_slice(&self.read_buf[start..start + n]);
                self.read_pos += n;
                return Poll::Ready(Ok(n));
            }
            match self.try_receive() {
                Ok(Some(item)) => {
                    let value = item
                        .into_value()
                        .map_err(|e| std::io::Error::new(std::io::ErrorKind::InvalidData, e))?;
                    let bytes = match value.into_bytes() {
                        Ok(b) => b,
                        Err(other) => {
                            other
                                .into_string()
                                .map(String::into_bytes)
                                .map_err(|other| {
                                    std::io::Error::new(
                                        std::io::ErrorKind::InvalidData,
                                        format!(
                                            "channel item is {}, not bytes or str",
                                            other.type_name()
                                        ),
                                    )
                                })?
                        }
                    };
                    self.read_buf = bytes;
                    self.read_pos = 0;
                    continue;
                }
                Ok(None) => {}
                Err(Error::Closed) => return Poll::Ready(Ok(0)),
                Err(e) => return Poll::Ready(Err(std::io::Error::other(e))),
            }
            if self.poll_listener(cx).is_pending() {
                return Poll::Pending;
            }
        }
    }
}

impl futures_io::AsyncWrite for Channel {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        loop {
            let driver = self.inner.gateway.driver().clone();
            let outcome = {
                let mut st = driver.lock();
                let r = st.session.send(self.inner.id, Item::bytes(buf));
                (r, st.take_wakeups())
            };
            driver.wake(outcome.1);
            match outcome.0 {
                Ok(SendOutcome::Sent) => return Poll::Ready(Ok(buf.len())),
                Ok(SendOutcome::Blocked(_)) => {}
                Err(e) => return Poll::Ready(Err(std::io::Error::other(Error::from(e)))),
            }
            if self.poll_listener(cx).is_pending() {
                return Poll::Pending;
            }
        }
    }

    fn poll_flush(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Poll::Ready(Ok(()))
    }

    fn poll_close(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Poll::Ready(self.close_inner(None).map_err(std::io::Error::other))
    }
}
