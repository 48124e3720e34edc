//! The body of the `handshake` fuzz target, a library function so that
//! stable tests run it too.

/// The socket server's handshake, both sides, against arbitrary peer bytes
/// (with and without a token). Never panics, never waits for more than the
/// data holds (the stream ends where the data ends).
pub fn fuzz_handshake(data: &[u8]) {
    use execnet_gateway::handshake::{client_handshake, ClientPolicy};
    let token = execnet_gateway::Token::new("fuzz-token");
    for token in [token.as_ref(), None] {
        let mut stream = FuzzStream(data);
        let _ =
            futures_lite::future::block_on(crate::handshake::server_handshake(&mut stream, token));
        for insecure in [false, true] {
            let policy = ClientPolicy::new(token.cloned()).insecure_no_auth(insecure);
            let mut reader = FuzzStream(data);
            let mut writer = FuzzStream(&[]);
            let _ =
                futures_lite::future::block_on(client_handshake(&mut reader, &mut writer, &policy));
        }
    }
}

/// Reads `data` then EOF; accepts and drops every write.
struct FuzzStream<'a>(&'a [u8]);

impl futures_io::AsyncRead for FuzzStream<'_> {
    fn poll_read(
        mut self: std::pin::Pin<&mut Self>,
        _: &mut std::task::Context<'_>,
        buf: &mut [u8],
    ) -> std::task::Poll<std::io::Result<usize>> {
        let n = buf.len().min(self.0.len());
        buf[..n].copy_from_slice(&self.0[..n]);
        self.0 = &self.0[n..];
        std::task::Poll::Ready(Ok(n))
    }
}

impl futures_io::AsyncWrite for FuzzStream<'_> {
    fn poll_write(
        self: std::pin::Pin<&mut Self>,
        _: &mut std::task::Context<'_>,
        buf: &[u8],
    ) -> std::task::Poll<std::io::Result<usize>> {
        std::task::Poll::Ready(Ok(buf.len()))
    }
    fn poll_flush(
        self: std::pin::Pin<&mut Self>,
        _: &mut std::task::Context<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        std::task::Poll::Ready(Ok(()))
    }
    fn poll_close(
        self: std::pin::Pin<&mut Self>,
        _: &mut std::task::Context<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        std::task::Poll::Ready(Ok(()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fixed_inputs_do_not_panic() {
        let mut inputs: Vec<Vec<u8>> = vec![vec![], vec![0], vec![1, 255, 255]];
        let mut x: u32 = 12345;
        for _ in 0..200 {
            let len = (x % 300) as usize;
            let data: Vec<u8> = (0..len)
                .map(|_| {
                    x = x.wrapping_mul(1_103_515_245).wrapping_add(12345);
                    (x >> 16) as u8
                })
                .collect();
            inputs.push(data);
        }
        // A well-formed client answer with a wrong MAC, and a server hello.
        let mut answer = b"EXNC\x01".to_vec();
        answer.extend_from_slice(&[7; 64]);
        inputs.push(answer);
        let mut hello = b"EXNS\x01\x01".to_vec();
        hello.extend_from_slice(&[9; 64]);
        inputs.push(hello);
        for input in &inputs {
            fuzz_handshake(input);
        }
    }
}
