//! A child process driven through its console: everything it prints is
//! collected as it arrives, with the time each piece arrived, and text can be
//! typed into it. The integration-test harness and `cargo xtask bench` both
//! drive QEMU this way; the harness judges what appears, the benchmark also
//! times it.

use std::io::{self, Read, Write};
use std::os::unix::process::CommandExt;
use std::process::{Child, ChildStdin, Command, ExitStatus, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// A running child with its console captured.
pub struct Console {
    child: Child,
    stdin: Option<ChildStdin>,
    log: Arc<Mutex<Log>>,
    started: Instant,
    own_group: bool,
    status: Option<ExitStatus>,
}

/// What the child printed (stdout and stderr, in arrival order, carriage
/// returns dropped) and when each piece arrived.
#[derive(Default)]
struct Log {
    bytes: Vec<u8>,
    /// For each piece read: the length of `bytes` after it, and when.
    arrivals: Vec<(usize, Instant)>,
}

impl Log {
    fn append(&mut self, piece: &[u8], at: Instant) {
        self.bytes.extend(piece.iter().copied().filter(|&b| b != b'\r'));
        self.arrivals.push((self.bytes.len(), at));
    }

    /// When the byte at `offset` arrived.
    fn arrival_of(&self, offset: usize) -> Option<Instant> {
        let index = self.arrivals.partition_point(|&(end, _)| end <= offset);
        self.arrivals.get(index).map(|&(_, at)| at)
    }
}

/// Where a piece of text appeared on the console, and when its last byte
/// arrived.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Seen {
    /// Byte offset of its first byte.
    pub start: usize,
    /// Byte offset just after it.
    pub end: usize,
    /// When it was complete.
    pub at: Instant,
}

/// Why waiting for text failed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Missing {
    /// The child ended first.
    Exited,
    /// The time ran out.
    TimedOut,
}

impl Console {
    /// Starts `command` with its stdin, stdout and stderr piped. With
    /// `own_group`, the child leads a process group of its own and
    /// [`Console::kill`] stops the whole group (e.g. `cargo` and the QEMU it
    /// starts); without, Ctrl-C at the terminal reaches it as usual.
    pub fn spawn(mut command: Command, own_group: bool) -> io::Result<Console> {
        if own_group {
            command.process_group(0);
        }
        let started = Instant::now();
        let mut child =
            command.stdin(Stdio::piped()).stdout(Stdio::piped()).stderr(Stdio::piped()).spawn()?;
        let log = Arc::new(Mutex::new(Log::default()));
        collect(child.stdout.take().expect("stdout is piped"), log.clone());
        collect(child.stderr.take().expect("stderr is piped"), log.clone());
        let stdin = child.stdin.take();
        Ok(Console { child, stdin, log, started, own_group, status: None })
    }

    /// The child's process id.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// When the child was started.
    pub fn started(&self) -> Instant {
        self.started
    }

    /// Everything printed so far, as text.
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.log.lock().unwrap().bytes).into_owned()
    }

    /// Bytes printed so far: a mark for [`Console::find`] and
    /// [`Console::wait_for`].
    pub fn len(&self) -> usize {
        self.log.lock().unwrap().bytes.len()
    }

    /// Whether nothing has been printed yet.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The text from byte offset `from` to `to` (or to the end).
    pub fn slice(&self, from: usize, to: Option<usize>) -> String {
        let log = self.log.lock().unwrap();
        let to = to.unwrap_or(log.bytes.len()).min(log.bytes.len());
        String::from_utf8_lossy(log.bytes.get(from..to).unwrap_or_default()).into_owned()
    }

    /// The first `needle` that starts at or after byte offset `since`.
    pub fn find(&self, since: usize, needle: &str) -> Option<Seen> {
        let log = self.log.lock().unwrap();
        let haystack = log.bytes.get(since..)?;
        let start = since + find_bytes(haystack, needle.as_bytes())?;
        let end = start + needle.len();
        let at = log.arrival_of(end.saturating_sub(1))?;
        Some(Seen { start, end, at })
    }

    /// Waits until `needle` appears at or after `since`.
    pub fn wait_for(
        &mut self,
        since: usize,
        needle: &str,
        timeout: Duration,
    ) -> Result<Seen, Missing> {
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(seen) = self.find(since, needle) {
                return Ok(seen);
            }
            if self.try_wait().is_some() {
                // The collectors may still hold the last lines.
                std::thread::sleep(Duration::from_millis(200));
                return self.find(since, needle).ok_or(Missing::Exited);
            }
            if Instant::now() > deadline {
                return Err(Missing::TimedOut);
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Types `bytes` into the console.
    pub fn send(&mut self, bytes: &[u8]) -> io::Result<()> {
        let stdin = self.stdin.as_mut().ok_or(io::ErrorKind::BrokenPipe)?;
        stdin.write_all(bytes)?;
        stdin.flush()
    }

    /// The child's exit status, if it has ended.
    pub fn try_wait(&mut self) -> Option<ExitStatus> {
        if self.status.is_none() {
            self.status = self.child.try_wait().ok().flatten();
        }
        self.status
    }

    /// Waits up to `timeout` for the child to end by itself.
    pub fn wait(&mut self, timeout: Duration) -> Option<ExitStatus> {
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(status) = self.try_wait() {
                // Let the collectors drain the last lines.
                std::thread::sleep(Duration::from_millis(200));
                return Some(status);
            }
            if Instant::now() > deadline {
                return None;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Stops the child (and its group, if it has its own) at once.
    pub fn kill(&mut self) {
        if self.try_wait().is_some() {
            return;
        }
        let pid = self.child.id() as libc::pid_t;
        let target = if self.own_group { -pid } else { pid };
        // SAFETY: signalling our own child (or its group); at worst it is
        // gone already and the call fails.
        unsafe { libc::kill(target, libc::SIGKILL) };
        self.status = self.child.wait().ok();
    }
}

impl Drop for Console {
    fn drop(&mut self) {
        self.kill();
    }
}

fn collect(mut source: impl Read + Send + 'static, into: Arc<Mutex<Log>>) {
    std::thread::spawn(move || {
        let mut buffer = [0u8; 4096];
        while let Ok(n) = source.read(&mut buffer) {
            if n == 0 {
                break;
            }
            let at = Instant::now();
            into.lock().unwrap().append(&buffer[..n], at);
        }
    });
}

fn find_bytes(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    if needle.is_empty() {
        return Some(0);
    }
    haystack.windows(needle.len()).position(|window| window == needle)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn arrivals_name_the_piece_that_completed_a_byte() {
        let t0 = Instant::now();
        let t1 = t0 + Duration::from_secs(1);
        let mut log = Log::default();
        log.append(b"ab\r\n", t0);
        log.append(b"cd", t1);
        assert_eq!(log.bytes, b"ab\ncd");
        assert_eq!(log.arrival_of(2), Some(t0));
        assert_eq!(log.arrival_of(3), Some(t1));
        assert_eq!(log.arrival_of(5), None);
    }

    #[test]
    fn a_real_child_is_timed_and_typed_into() {
        let mut console = Console::spawn(Command::new("cat"), false).unwrap();
        console.send(b"hello\nworld\n").unwrap();
        let seen = console.wait_for(0, "world", Duration::from_secs(10)).unwrap();
        assert_eq!((seen.start, seen.end), (6, 11));
        assert!(seen.at >= console.started());
        assert_eq!(console.slice(0, Some(5)), "hello");
        assert_eq!(console.find(7, "world"), None);
        console.kill();
        assert!(console.try_wait().is_some());
        assert_eq!(console.wait_for(12, "never", Duration::from_secs(1)), Err(Missing::Exited));
    }
}
