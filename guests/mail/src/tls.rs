//! TLS 1.3 with `embedded-tls` over a smoltcp TCP socket (see the README
//! for the choice). The server's certificate must chain to the corporate
//! CA from the provisioning and carry its `server_name`; anything else
//! ends the connection before a byte of the session goes out. There is no
//! plaintext path.
//!
//! Not yet checked: certificate validity dates (the virtual platform has
//! no clock; `NoClock`), until the time comes with the provisioning.

use crate::net::{now, Port};
use embedded_io::{ErrorKind, ErrorType};
use embedded_tls::blocking::{
    Aes128GcmSha256, Certificate, CryptoProvider, NoClock, TlsConfig, TlsConnection, TlsContext,
    TlsError, TlsVerifier,
};
use embedded_tls::pki::CertVerifier;
use rand_core::{CryptoRng, RngCore};
use smoltcp::iface::{Interface, SocketHandle, SocketSet};
use smoltcp::socket::tcp;
use smoltcp::time::Instant;
use virtio_drivers::device::rng::VirtIORng;

use crate::devices::{Hal, Transport};

pub type Rng = VirtIORng<Hal, Transport>;

/// Randomness for TLS straight from the virtio entropy device.
pub struct Entropy<'a>(pub &'a mut Rng);

impl RngCore for Entropy<'_> {
    fn next_u32(&mut self) -> u32 {
        let mut b = [0; 4];
        self.fill_bytes(&mut b);
        u32::from_le_bytes(b)
    }

    fn next_u64(&mut self) -> u64 {
        let mut b = [0; 8];
        self.fill_bytes(&mut b);
        u64::from_le_bytes(b)
    }

    fn fill_bytes(&mut self, dest: &mut [u8]) {
        let mut done = 0;
        while done < dest.len() {
            match self.0.request_entropy(&mut dest[done..]) {
                Ok(n) if n > 0 => done += n,
                // No entropy, no keys: stop rather than go on with less.
                other => panic!("the entropy device failed: {other:?}"),
            }
        }
    }

    fn try_fill_bytes(&mut self, dest: &mut [u8]) -> Result<(), rand_core::Error> {
        self.fill_bytes(dest);
        Ok(())
    }
}

/// The device is the CPU's RNDR (or Duet's DRBG, see docs/architecture.md).
impl CryptoRng for Entropy<'_> {}

struct Provider<'a> {
    rng: Entropy<'a>,
    verifier: CertVerifier<'a, Aes128GcmSha256, NoClock, 4096>,
}

impl CryptoProvider for Provider<'_> {
    type CipherSuite = Aes128GcmSha256;
    type Signature = &'static [u8];

    fn rng(&mut self) -> impl rand_core::CryptoRngCore {
        &mut self.rng
    }

    fn verifier(&mut self) -> Result<&mut impl TlsVerifier<Aes128GcmSha256>, TlsError> {
        Ok(&mut self.verifier)
    }
}

/// A connected TCP socket as `embedded-io` byte streams, driving the
/// interface while it waits (until `deadline`).
pub struct Stream<'a> {
    pub iface: &'a mut Interface,
    pub port: &'a mut Port,
    pub sockets: &'a mut SocketSet<'static>,
    pub handle: SocketHandle,
    pub deadline: Instant,
}

#[derive(Debug)]
pub enum StreamError {
    TimedOut,
    Closed,
}

impl core::fmt::Display for StreamError {
    fn fmt(&self, f: &mut core::fmt::Formatter) -> core::fmt::Result {
        match self {
            StreamError::TimedOut => write!(f, "timed out"),
            StreamError::Closed => write!(f, "connection closed"),
        }
    }
}

impl core::error::Error for StreamError {}

impl embedded_io::Error for StreamError {
    fn kind(&self) -> ErrorKind {
        match self {
            StreamError::TimedOut => ErrorKind::TimedOut,
            StreamError::Closed => ErrorKind::ConnectionReset,
        }
    }
}

impl ErrorType for Stream<'_> {
    type Error = StreamError;
}

impl Stream<'_> {
    fn poll(&mut self) -> Result<&mut tcp::Socket<'static>, StreamError> {
        if now() > self.deadline {
            return Err(StreamError::TimedOut);
        }
        self.iface.poll(now(), self.port, self.sockets);
        Ok(self.sockets.get_mut::<tcp::Socket>(self.handle))
    }

    /// Nothing to do until a frame comes or a timer is due: sleep (WFI).
    fn wait(&mut self) {
        let now = now();
        let delay = self.iface.poll_delay(now, self.sockets);
        let until = delay.map_or(self.deadline, |d| (now + d).min(self.deadline));
        crate::net::sleep(self.port, until);
    }
}

impl embedded_io::Read for Stream<'_> {
    fn read(&mut self, buf: &mut [u8]) -> Result<usize, StreamError> {
        loop {
            let socket = self.poll()?;
            if socket.can_recv() {
                return socket.recv_slice(buf).map_err(|_| StreamError::Closed);
            }
            if !socket.may_recv() {
                return Ok(0);
            }
            self.wait();
        }
    }
}

impl embedded_io::Write for Stream<'_> {
    fn write(&mut self, buf: &[u8]) -> Result<usize, StreamError> {
        loop {
            let socket = self.poll()?;
            if socket.can_send() {
                return socket.send_slice(buf).map_err(|_| StreamError::Closed);
            }
            if !socket.may_send() {
                return Err(StreamError::Closed);
            }
            self.wait();
        }
    }

    fn flush(&mut self) -> Result<(), StreamError> {
        loop {
            let socket = self.poll()?;
            if socket.send_queue() == 0 {
                return Ok(());
            }
            if !socket.may_send() {
                return Err(StreamError::Closed);
            }
            self.wait();
        }
    }
}

pub type Connection<'a, 'b> = TlsConnection<'a, Stream<'b>, Aes128GcmSha256>;

/// Opens TLS on `stream`, checking the server against `ca_der` and
/// `server_name`, and runs `work` over the connection.
pub fn with_connection<R, E: From<TlsError>>(
    stream: Stream,
    rng: &mut Rng,
    ca_der: &[u8],
    server_name: &str,
    work: impl FnOnce(&mut Connection) -> Result<R, E>,
) -> Result<R, E> {
    let mut read_buffer = alloc::vec![0; 16 * 1024 + 256];
    let mut write_buffer = alloc::vec![0; 4096];
    let mut tls: Connection = TlsConnection::new(stream, &mut read_buffer, &mut write_buffer);
    let config = TlsConfig::new().with_server_name(server_name);
    let provider =
        Provider { rng: Entropy(rng), verifier: CertVerifier::new(Certificate::X509(ca_der)) };
    tls.open(TlsContext::new(&config, provider))?;
    // No close_notify after the work: IMAP and SMTP end with their own
    // goodbye (LOGOUT, QUIT), after which the server closes at once; a
    // close_notify written then may never be acknowledged (the host side
    // is gone), and flushing it would wait out the whole deadline. The
    // TCP connection is closed by the caller.
    work(&mut tls)
}

/// Writes all of `bytes` and flushes.
pub fn send(tls: &mut Connection, mut bytes: &[u8]) -> Result<(), TlsError> {
    while !bytes.is_empty() {
        let n = tls.write(bytes)?;
        bytes = &bytes[n..];
    }
    tls.flush()
}

/// Over TLS on `stream`: checks the server, sends `line`, returns the
/// first line of the answer.
pub fn exchange_line(
    stream: Stream,
    rng: &mut Rng,
    ca_der: &[u8],
    server_name: &str,
    line: &[u8],
) -> Result<alloc::string::String, TlsError> {
    with_connection(stream, rng, ca_der, server_name, |tls| {
        send(tls, line)?;
        let mut got = alloc::vec::Vec::new();
        let mut buffer = [0; 512];
        while !got.contains(&b'\n') && got.len() < 512 {
            let n = tls.read(&mut buffer)?;
            if n == 0 {
                break;
            }
            got.extend_from_slice(&buffer[..n]);
        }
        let end = got.iter().position(|&b| b == b'\n').unwrap_or(got.len());
        let text = alloc::string::String::from_utf8_lossy(&got[..end]);
        Ok(alloc::string::String::from(text.trim_end()))
    })
}
