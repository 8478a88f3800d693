//! The integration-test harness: boots Duet under QEMU, reads its console,
//! types into it, and on any failure shows the whole console transcript.
//!
//! Tests need QEMU. Without it they fail with the install instructions; they
//! never pass by skipping.

pub mod qmp;

use qmp::Qmp;
use std::path::{Path, PathBuf};
use std::process::{Command, ExitStatus};
use std::sync::OnceLock;
use std::time::{Duration, Instant};
use xtask::console::Console;

pub use duet::status;
pub use xtask::image::Variant;
pub use xtask::qemu::{Ending, Options};

/// Generous: QEMU emulates AArch64 in software, on a machine that may be
/// busy with other tests.
pub const BOOT_TIMEOUT: Duration = Duration::from_secs(60);

/// The flat image of `variant`, built once per test process.
pub fn image(variant: Variant) -> PathBuf {
    static RELEASE: OnceLock<PathBuf> = OnceLock::new();
    static FAULT: OnceLock<PathBuf> = OnceLock::new();
    let cell = match variant {
        Variant::Release => &RELEASE,
        Variant::FaultInjection => &FAULT,
    };
    cell.get_or_init(|| match xtask::image::build(variant) {
        Ok(image) => image.binary,
        Err(e) => panic!("cannot build the {variant:?} hypervisor image: {e:#}"),
    })
    .clone()
}

/// The probe guest's image, built once per test process.
pub fn probe_image() -> PathBuf {
    static PROBE: OnceLock<PathBuf> = OnceLock::new();
    PROBE
        .get_or_init(|| match xtask::image::build_probe() {
            Ok(image) => image.binary,
            Err(e) => panic!("cannot build the probe guest: {e:#}"),
        })
        .clone()
}

/// The microbenchmark guest's image (guests/bench), built once per test
/// process.
pub fn bench_guest_image() -> PathBuf {
    static BENCH: OnceLock<PathBuf> = OnceLock::new();
    BENCH
        .get_or_init(|| match xtask::image::build_bench_guest() {
            Ok(image) => image.binary,
            Err(e) => panic!("cannot build the bench guest: {e:#}"),
        })
        .clone()
}

/// Writes `manifest` (TOML text) as `name.toml` under
/// `target/test-personas/`, and returns its path.
pub fn manifest(name: &str, manifest: &str) -> PathBuf {
    let dir = xtask::target_dir().join("test-personas");
    std::fs::create_dir_all(&dir).expect("create target/test-personas");
    let path = dir.join(format!("{name}.toml"));
    std::fs::write(&path, manifest).expect("write the test manifest");
    path
}

/// A persona of [`screen_manifest`]: its name, which is also its role, and
/// its indicator colour.
pub type ScreenPersona<'a> = (&'a str, [u8; 3]);

/// Writes, as [`manifest`] `name`, a manifest for the phone's screen: an
/// idle lock after `idle_seconds` (0: never) and one small Linux VM per
/// persona (Debian's kernel with the busybox initramfs, 1 vCPU, 192 MiB,
/// `console=ttyAMA0 quiet` and `cmdline` on its command line).
pub fn screen_manifest(
    name: &str,
    idle_seconds: u64,
    cmdline: &str,
    personas: &[ScreenPersona],
) -> PathBuf {
    let default = xtask::guest::default_manifest().expect("the default guest is available");
    let guests = default.parent().expect("guests/").parent().expect("root").join("target/guests");
    let cmdline = format!("console=ttyAMA0 quiet {cmdline}");
    let cmdline = cmdline.trim_end();
    let vm = |(name, [r, g, b]): &ScreenPersona| {
        format!(
            "[[vm]]\nname = \"{name}\"\nrole = \"{name}\"\nkernel = {:?}\ninitrd = {:?}\n\
             cmdline = \"{}\"\nmemory_mib = 192\nvcpus = 1\n\
             colour = \"#{r:02x}{g:02x}{b:02x}\"\n\n",
            guests.join("Image"),
            guests.join("initramfs.cpio"),
            cmdline,
        )
    };
    let text = format!("[screen]\nlock_after_idle_seconds = {idle_seconds}\n\n")
        + &personas.iter().map(vm).collect::<String>();
    manifest(name, &text)
}

/// A manifest with one VM, "probe", running the probe guest.
pub fn probe_manifest() -> PathBuf {
    let text = format!(
        "[[vm]]\nname = \"probe\"\nrole = \"corporate\"\nkernel = {:?}\nmemory_mib = 64\nvcpus = 1\n",
        probe_image()
    );
    manifest("probe", &text)
}

/// Packs `manifest` (TOML text, see [`manifest`]) for the default board.
pub fn package(name: &str, text: &str) -> PathBuf {
    let path = manifest(name, text);
    match xtask::personas::package(&path, duet_boards::default_board()) {
        Ok(package) => package,
        Err(e) => panic!("cannot pack {}: {e:#}", path.display()),
    }
}

/// Panics with the install instructions if QEMU is missing or too old.
pub fn require_qemu() {
    if let Err(e) = xtask::deps::require_qemu() {
        panic!("this test boots Duet under QEMU: {e:#}");
    }
}

/// The physical screen of the QEMU phone: what screenshots show and
/// touches are scaled to.
pub const SCREEN: (u32, u32) = (720, 1280);

/// Where the tests leave their screenshots: target/test-screens/.
pub fn screens_dir() -> PathBuf {
    let dir = xtask::target_dir().join("test-screens");
    let _ = std::fs::create_dir_all(&dir);
    dir
}

/// How long QEMU gets to open its QMP socket.
const QMP_TIMEOUT: Duration = Duration::from_secs(30);

/// A process whose output is collected as it runs.
pub struct Machine {
    console: Console,
    what: String,
    /// The QMP socket QEMU was told to open, if any.
    qmp_path: Option<PathBuf>,
    qmp: Option<Qmp>,
}

impl Machine {
    /// Boots `variant` on the default board with `options`.
    pub fn boot(variant: Variant, options: &Options) -> Machine {
        require_qemu();
        let board = duet_boards::default_board();
        let command = xtask::qemu::command(board, &image(variant), options);
        Machine::spawn(command, "QEMU").with_qmp(options.qmp.clone())
    }

    /// Boots the flat image at `image` on `board` with `options`.
    pub fn boot_image(
        board: &duet_boards::Board,
        image: &std::path::Path,
        options: &Options,
    ) -> Machine {
        require_qemu();
        let command = xtask::qemu::command(board, image, options);
        Machine::spawn(command, &format!("QEMU {}", board.qemu.machine))
            .with_qmp(options.qmp.clone())
    }

    /// Runs `command`, a QEMU command line of the caller's (e.g. a guest
    /// booted without Duet), described as `what` in failures.
    pub fn qemu(command: Command, what: &str) -> Machine {
        require_qemu();
        Machine::spawn(command, what)
    }

    /// Runs `cargo xtask ARGS` as a user would, console and all; with
    /// `--qmp PATH` among them, [`Machine::qmp`] talks to that socket.
    pub fn xtask(args: &[&str]) -> Machine {
        let mut command = Command::new(env!("CARGO"));
        command
            .current_dir(xtask::workspace_root())
            .args(["run", "--quiet", "--package", "xtask", "--"])
            .args(args);
        let qmp = args.iter().position(|&a| a == "--qmp").and_then(|i| args.get(i + 1));
        Machine::spawn(command, &format!("cargo xtask {}", args.join(" ")))
            .with_qmp(qmp.map(PathBuf::from))
    }

    /// Runs `cargo xtask run --screen` on `manifest` (e.g. a
    /// [`screen_manifest`]) with a QMP socket of its own, named after `name`
    /// (see [`qmp::socket_path`]), for [`Machine::qmp`].
    pub fn run_screen(name: &str, manifest: &Path) -> Machine {
        let socket = qmp::socket_path(name);
        let manifest = manifest.to_str().expect("a UTF-8 manifest path");
        let socket = socket.to_str().expect("a UTF-8 socket path");
        Machine::xtask(&["run", "--screen", "--manifest", manifest, "--qmp", socket])
    }

    fn spawn(command: Command, what: &str) -> Machine {
        // Its own process group, so that a timeout can stop QEMU too when the
        // process is `cargo xtask`.
        let console =
            Console::spawn(command, true).unwrap_or_else(|e| panic!("cannot start {what}: {e}"));
        Machine { console, what: what.to_string(), qmp_path: None, qmp: None }
    }

    /// Notes the QMP socket QEMU opens (when `Machine::qemu` was given a
    /// command with `-qmp`).
    pub fn with_qmp(mut self, path: Option<PathBuf>) -> Machine {
        self.qmp_path = path;
        self
    }

    /// The QMP connection to this QEMU, made on first use; fails the test
    /// if QEMU was started without a QMP socket or does not answer on it.
    /// Touches are scaled for [`SCREEN`].
    pub fn qmp(&mut self) -> &mut Qmp {
        if self.qmp.is_none() {
            let Some(path) = self.qmp_path.clone() else {
                self.fail("this machine was started without a QMP socket");
            };
            match Qmp::connect(&path, SCREEN, QMP_TIMEOUT) {
                Ok(qmp) => self.qmp = Some(qmp),
                Err(e) => self.fail(&format!("cannot talk QMP on {}: {e}", path.display())),
            }
        }
        self.qmp.as_mut().expect("connected above")
    }

    /// Runs a QMP request (`what` names it in a failure); fails the test,
    /// with the console, if it fails.
    pub fn qmp_do<T>(
        &mut self,
        what: &str,
        action: impl FnOnce(&mut Qmp) -> Result<T, qmp::QmpError>,
    ) -> T {
        let result = action(self.qmp());
        result.unwrap_or_else(|e| self.fail(&format!("QMP {what}: {e}")))
    }

    /// Takes screenshots until `check` accepts one, for at most `settles`,
    /// and keeps it as target/test-screens/NAME.png (the docs show some);
    /// otherwise fails the test with the last one saved as NAME.ppm and
    /// `check`'s complaint. A screen not [`SCREEN`]'s size is never accepted.
    pub fn expect_screen(
        &mut self,
        name: &str,
        settles: Duration,
        check: impl Fn(&qmp::Picture) -> Result<(), String>,
    ) -> qmp::Picture {
        let deadline = Instant::now() + settles;
        loop {
            let picture = self.qmp_do("screendump", |q| q.screenshot());
            let verdict = if (picture.width, picture.height) != SCREEN {
                Err(format!("the screen is {}x{}, not {SCREEN:?}", picture.width, picture.height))
            } else {
                check(&picture)
            };
            match verdict {
                Ok(()) => {
                    let path = screens_dir().join(format!("{name}.png"));
                    if let Err(e) = picture.save_png(&path) {
                        self.fail(&format!("cannot keep {}: {e}", path.display()));
                    }
                    return picture;
                }
                Err(complaint) if Instant::now() > deadline => {
                    let path = screens_dir().join(format!("{name}.ppm"));
                    let _ = picture.save(&path);
                    self.fail(&format!("{name}: {complaint} (picture: {})", path.display()));
                }
                Err(_) => std::thread::sleep(Duration::from_millis(500)),
            }
        }
    }

    /// Everything printed so far.
    pub fn console(&self) -> String {
        self.console.text()
    }

    /// Waits until the console shows `needle`, and returns the console.
    pub fn expect(&mut self, needle: &str, timeout: Duration) -> String {
        self.expect_since(0, needle, timeout)
    }

    /// Where the console has got to, for [`Machine::expect_since`].
    pub fn mark(&self) -> usize {
        self.console().len()
    }

    /// Waits until the console shows `needle` after position `mark`, and
    /// returns the console from `mark` on.
    pub fn expect_since(&mut self, mark: usize, needle: &str, timeout: Duration) -> String {
        let deadline = Instant::now() + timeout;
        loop {
            let console = self.console();
            let recent = console.get(mark..).unwrap_or("");
            if recent.contains(needle) {
                return recent.to_string();
            }
            if self.poll_exit().is_some() {
                self.fail(&format!("{} ended before printing {needle:?}", self.what));
            }
            if Instant::now() > deadline {
                self.fail(&format!("no {needle:?} within {timeout:?}"));
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// Waits until the console shows `needle` after `mark`, and returns the
    /// position just past it: a mark for what comes after (a shell's echo
    /// of a command holds the prompt too, so waiting for the next prompt
    /// must start after the event that precedes it).
    pub fn expect_after(&mut self, mark: usize, needle: &str, timeout: Duration) -> usize {
        let recent = self.expect_since(mark, needle, timeout);
        mark + recent.find(needle).expect("expect_since found it") + needle.len()
    }

    /// Fails the test unless the console so far shows every one of `needles`.
    pub fn require(&mut self, needles: &[&str]) {
        let console = self.console();
        for needle in needles {
            if !console.contains(needle) {
                self.fail(&format!("the console lacks {needle:?}"));
            }
        }
    }

    /// Fails the test if the console so far shows `needle`.
    pub fn forbid(&mut self, needle: &str) {
        if self.console().contains(needle) {
            self.fail(&format!("the console shows {needle:?}"));
        }
    }

    /// Types `command` and a newline into a guest shell, waits for the shell
    /// to echo it and then to show `prompt` again, and returns what the
    /// command printed in between.
    pub fn shell(&mut self, command: &str, prompt: &str, timeout: Duration) -> String {
        let mark = self.mark();
        self.send(&format!("{command}\n"));
        let echoed = self.expect_since(mark, &format!("{command}\n"), timeout);
        let after_echo =
            mark + echoed.find(&format!("{command}\n")).unwrap_or(0) + command.len() + 1;
        let output = self.expect_since(after_echo, prompt, timeout);
        undo_reprints(&output[..output.find(prompt).unwrap_or(output.len())])
    }

    /// Ends a run of the default persona pair: `poweroff -f` in the personal
    /// VM (which has the focus), `Ctrl-] n`, `poweroff -f` in the corporate
    /// VM; then Duet must power off cleanly and the command succeed.
    pub fn power_off_personal_then_corporate(&mut self, timeout: Duration) {
        let mark = self.mark();
        self.send("poweroff -f\n");
        self.expect_since(mark, "duet: vm personal powered off", timeout);
        let focus = self.mark();
        self.send("\x1dn");
        self.expect_since(focus, "duet: console input now goes to vm corporate", timeout);
        // The corporate VM runs in the background on a CPU budget, so beside
        // a busy personal VM it may still be booting: bytes typed before its
        // shell opens the serial port are dropped by Linux. Its prompt shows
        // once it has one (at once if it already had).
        self.expect_since(focus, "[corporate] / # ", timeout);
        self.send("poweroff -f\n");
        let exit = self.wait(timeout);
        self.require(&[
            "duet: vm corporate powered off",
            &format!("{} every VM has powered off", status::POWER_OFF),
        ]);
        self.forbid(status::HALTED);
        if !exit.success() {
            self.fail(&format!("`cargo xtask run` exited with {exit}"));
        }
    }

    /// Types `text` into the console.
    pub fn send(&mut self, text: &str) {
        self.console.send(text.as_bytes()).expect("console input");
    }

    /// Waits for the process to end; fails the test (and stops it) on timeout.
    pub fn wait(&mut self, timeout: Duration) -> ExitStatus {
        match self.console.wait(timeout) {
            Some(status) => status,
            None => self.fail(&format!("{} still running after {timeout:?}", self.what)),
        }
    }

    /// Fails the test with `message` and the console transcript.
    pub fn fail(&mut self, message: &str) -> ! {
        self.stop();
        panic!("{message}\n----- console -----\n{}\n-------------------", self.console());
    }

    fn poll_exit(&mut self) -> Option<ExitStatus> {
        self.console.try_wait()
    }

    /// Kills the process and its group (QEMU too) at once, as a power cut
    /// would.
    pub fn kill(&mut self) {
        self.stop();
    }

    /// Stops the process and its group; dropping the machine does the same.
    fn stop(&mut self) {
        self.console.kill();
    }
}

/// Undoes the console's reprints: when another VM's line (or one of Duet's)
/// breaks a line a VM was still writing, the console prints that line again
/// from its start once it goes on (see `hyp/src/vm/console_mux.rs`). The
/// broken first copy is dropped here, so that what a command printed can be
/// parsed without seeing some of it twice.
pub fn undo_reprints(text: &str) -> String {
    let lines: Vec<&str> = text.split_inclusive('\n').collect();
    let mut keep = vec![true; lines.len()];
    // Per tag: the index of its last line.
    let mut last: std::collections::HashMap<&str, usize> = Default::default();
    for (index, line) in lines.iter().enumerate() {
        let Some((tag, content)) = split_tag(line) else { continue };
        if let Some(&previous) = last.get(tag) {
            let (_, earlier) = split_tag(lines[previous]).expect("tagged");
            // Only a line with something in it can have been cut short;
            // an empty one is a blank line of its own.
            let broken = previous + 1 < index;
            if broken && !earlier.trim().is_empty() && content.starts_with(earlier) {
                keep[previous] = false;
            }
        }
        last.insert(tag, index);
    }
    lines.iter().zip(keep).filter(|(_, keep)| *keep).map(|(line, _)| *line).collect()
}

/// `[vm] text` as `("[vm]", text)`, without the line's ending.
fn split_tag(line: &str) -> Option<(&str, &str)> {
    if !line.starts_with('[') {
        return None;
    }
    let end = line.find("] ")?;
    let content = line[end + 2..].trim_end_matches(['\r', '\n']);
    Some((&line[..=end], content))
}

#[cfg(test)]
mod tests {
    use super::undo_reprints;

    #[test]
    fn a_line_broken_by_another_vm_is_kept_once() {
        let console = "[personal]  3f a8\n[personal]  6\r\n[corporate] \n[personal]  6f 5a\r\n\
                       [corporate] BusyBox\n[personal]  6f 5a 07\n[personal]  c1\n";
        assert_eq!(
            undo_reprints(console),
            "[personal]  3f a8\n[corporate] \n[corporate] BusyBox\n[personal]  6f 5a 07\n[personal]  c1\n"
        );
    }

    #[test]
    fn a_line_broken_by_duet_is_kept_once() {
        let console =
            "[personal] / # ec\r\nduet: vm corporate is restarting\n[personal] / # echo\n";
        assert_eq!(
            undo_reprints(console),
            "duet: vm corporate is restarting\n[personal] / # echo\n"
        );
    }

    #[test]
    fn lines_that_follow_each_other_are_all_kept() {
        let console = "[personal] a\n[personal] ab\n[corporate] a\n";
        assert_eq!(undo_reprints(console), console);
    }
}
