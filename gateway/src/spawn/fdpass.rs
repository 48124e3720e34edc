//! Passing file descriptors to the local spawner: `sendmsg` with
//! SCM_RIGHTS on the unix socket that is its control stream. rustix's
//! `sendmsg` is safe (it borrows the fds for the call), so no `unsafe` here.

use std::io::{self, IoSlice};
use std::mem::MaybeUninit;
use std::os::fd::BorrowedFd;
use std::os::unix::net::UnixStream;

use async_io::Async;
use futures_lite::AsyncWriteExt;
use rustix::net::{SendAncillaryBuffer, SendAncillaryMessage, SendFlags};

/// Write `bytes` to `socket` with `fds` attached to its first byte (the
/// receiver gets them with the read that returns that byte).
pub(super) async fn send_with_fds(
    socket: &Async<UnixStream>,
    bytes: &[u8],
    fds: &[BorrowedFd<'_>],
) -> io::Result<()> {
    let sent = socket
        .write_with(|s| {
            let mut space = [MaybeUninit::uninit(); rustix::cmsg_space!(ScmRights(3))];
            let mut ancillary = SendAncillaryBuffer::new(&mut space);
            if !fds.is_empty() && !ancillary.push(SendAncillaryMessage::ScmRights(fds)) {
                return Err(io::Error::other(
                    "too many file descriptors for one message",
                ));
            }
            rustix::net::sendmsg(
                s,
                &[IoSlice::new(bytes)],
                &mut ancillary,
                SendFlags::NOSIGNAL,
            )
            .map_err(io::Error::from)
        })
        .await?;
    // The fds went with the first byte; the rest is plain bytes.
    let mut rest = &bytes[sent..];
    let mut writer = socket;
    while !rest.is_empty() {
        let n = writer.write(rest).await?;
        if n == 0 {
            return Err(io::ErrorKind::WriteZero.into());
        }
        rest = &rest[n..];
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::{Read, Write};
    use std::os::fd::AsFd;

    /// The far end receives working descriptors: what we write into a pipe
    /// whose read end we passed comes out of the received one.
    #[test]
    fn passed_pipe_carries_bytes() {
        futures_lite::future::block_on(async {
            let (ours, theirs) = UnixStream::pair().expect("socketpair");
            let ours = Async::new(ours).expect("async");
            let (pipe_r, pipe_w) = rustix::pipe::pipe().expect("pipe");
            let mut pipe_w = std::fs::File::from(pipe_w);
            send_with_fds(&ours, b"hello", &[pipe_r.as_fd()])
                .await
                .expect("sent");
            drop(pipe_r);
            let mut space = [MaybeUninit::uninit(); rustix::cmsg_space!(ScmRights(3))];
            let mut ancillary = rustix::net::RecvAncillaryBuffer::new(&mut space);
            let mut buf = [0u8; 5];
            let got = rustix::net::recvmsg(
                &theirs,
                &mut [io::IoSliceMut::new(&mut buf)],
                &mut ancillary,
                rustix::net::RecvFlags::empty(),
            )
            .expect("recvmsg");
            assert_eq!(&buf[..got.bytes], b"hello");
            let mut received = Vec::new();
            for message in ancillary.drain() {
                if let rustix::net::RecvAncillaryMessage::ScmRights(fds) = message {
                    received.extend(fds);
                }
            }
            assert_eq!(received.len(), 1);
            pipe_w.write_all(b"through").expect("write");
            drop(pipe_w);
            let mut out = String::new();
            std::fs::File::from(received.remove(0))
                .read_to_string(&mut out)
                .expect("read");
            assert_eq!(out, "through");
        });
    }
}
