//! Helpers the engine's unit tests share.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use tokio::io::{AsyncRead, AsyncReadExt};

/// A connected pair of sockets on loopback: (client, server).
pub fn socket_pair() -> (std::net::TcpStream, std::net::TcpStream) {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let client = std::net::TcpStream::connect(listener.local_addr().unwrap()).unwrap();
    (client, listener.accept().unwrap().0)
}

/// Everything `reader` gives until its end, read `chunk` bytes at most at a
/// time, in at most `max_reads` reads.
pub async fn read_all_by<R: AsyncRead + Unpin>(reader: &mut R, chunk: usize, max_reads: usize) -> Vec<u8> {
    let mut got = Vec::new();
    let mut buf = vec![0u8; chunk];
    for _ in 0..max_reads {
        let n = reader.read(&mut buf).await.unwrap();
        if n == 0 {
            break;
        }
        assert!(n <= chunk);
        got.extend_from_slice(&buf[..n]);
    }
    got
}

/// A waker that records whether it was woken.
#[derive(Default)]
pub struct WakeFlag(AtomicBool);

impl WakeFlag {
    pub fn new() -> (Arc<WakeFlag>, std::task::Waker) {
        let flag = Arc::new(WakeFlag::default());
        let waker = std::task::Waker::from(flag.clone());
        (flag, waker)
    }

    pub fn woken(&self) -> bool {
        self.0.load(Ordering::SeqCst)
    }
}

impl std::task::Wake for WakeFlag {
    fn wake(self: Arc<Self>) {
        self.0.store(true, Ordering::SeqCst);
    }
}
