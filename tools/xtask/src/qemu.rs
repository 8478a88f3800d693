//! Starting QEMU on a board with a Duet image, and telling from the console
//! how the run ended: a clean power-off, a halt, or neither.

use crate::deps::QEMU;
use anyhow::{Context, Result};
use duet::status;
use duet_boards::Board;
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, ExitStatus, Stdio};
use std::sync::mpsc;
use std::time::Duration;

/// What to change from the board's defaults.
#[derive(Clone, Debug, Default)]
pub struct Options {
    /// CPUs, if not the board's default.
    pub cpus: Option<u32>,
    /// The boot command line (the device tree's `/chosen/bootargs`).
    pub append: Option<String>,
    /// The persona package, loaded where a bootloader puts an initrd.
    pub package: Option<PathBuf>,
    /// The device tree for boards whose QEMU model makes none (see
    /// [`board_dtb`]).
    pub dtb: Option<PathBuf>,
    /// The physical disk image: a virtio-blk device Duet drives.
    pub disk: Option<PathBuf>,
    /// A virtio-net device on QEMU's user network (the host is 10.0.2.2).
    pub nic: bool,
    /// The phone's screen, touch panel and keyboard, which Duet drives
    /// ([`SCREEN_DEVICES`]). QEMU stays headless; QMP `screendump` shows
    /// the screen.
    pub screen: bool,
    /// A QMP socket at this path (`-qmp unix:PATH,server=on,wait=off`),
    /// through which tests take screenshots and send touches and keys.
    pub qmp: Option<PathBuf>,
    /// Further QEMU arguments, after the board's own (a later `-machine`
    /// option overrides the board's).
    pub extra_args: Vec<String>,
}

/// The phone's screen (720x1280, portrait), touch panel and keyboard on
/// QEMU `virt`: after the disk and the NIC, so those keep their slots.
pub const SCREEN_DEVICES: [&str; 3] =
    ["virtio-gpu-device,xres=720,yres=1280", "virtio-multitouch-device", "virtio-keyboard-device"];

/// The device tree `board` needs passed with `-dtb`, taken from Debian's
/// kernel package (fetched on first use), if it needs one.
pub fn board_dtb(board: &Board) -> Result<Option<PathBuf>> {
    let Some(name) = board.qemu.dtb else { return Ok(None) };
    let kernel = crate::guest::kernel()?;
    let path =
        kernel.root.join("usr/lib").join(format!("linux-image-{}", kernel.release)).join(name);
    anyhow::ensure!(path.is_file(), "no {} in Debian's kernel package", path.display());
    Ok(Some(path))
}

/// How Duet's console says the run ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Ending {
    /// Duet powered the machine off on purpose.
    PoweredOff,
    /// Duet stopped because something went wrong.
    Halted,
    /// Duet said neither (QEMU died, or was stopped from outside).
    Unknown,
}

impl Ending {
    /// The ending of a console transcript (or a line of one).
    pub fn of(console: &str) -> Ending {
        if console.contains(status::HALTED) {
            Ending::Halted
        } else if console.contains(status::POWER_OFF) {
            Ending::PoweredOff
        } else {
            Ending::Unknown
        }
    }
}

/// The QEMU command that boots `image` on `board`, its console on stdio.
pub fn command(board: &Board, image: &Path, options: &Options) -> Command {
    let qemu = &board.qemu;
    let mut command = Command::new(QEMU);
    let cpus = if qemu.cpus_fixed { qemu.cpus } else { options.cpus.unwrap_or(qemu.cpus) };
    command
        .args(["-machine", qemu.machine, "-cpu", qemu.cpu])
        .args(["-m", &format!("{}M", qemu.memory_mib)])
        .args(["-smp", &cpus.to_string()])
        .args(["-nographic", "-no-reboot"])
        .args(qemu.extra_args)
        .arg("-kernel")
        .arg(image);
    if let Some(append) = &options.append {
        command.args(["-append", append]);
    }
    if let Some(package) = &options.package {
        command.arg("-initrd").arg(package);
    }
    if let Some(dtb) = &options.dtb {
        command.arg("-dtb").arg(dtb);
    }
    // On `virt`, `-device virtio-*-device` lands in a virtio-mmio slot;
    // Duet drives these itself and guests never see them.
    if let Some(disk) = &options.disk {
        let mut drive = std::ffi::OsString::from("if=none,format=raw,id=disk0,file=");
        drive.push(disk);
        command.arg("-drive").arg(drive);
        command.args(["-device", "virtio-blk-device,drive=disk0"]);
    }
    if options.nic {
        command.args(["-netdev", "user,id=net0", "-device", "virtio-net-device,netdev=net0"]);
    }
    if options.screen {
        for device in SCREEN_DEVICES {
            command.args(["-device", device]);
        }
    }
    if let Some(qmp) = &options.qmp {
        let mut socket = std::ffi::OsString::from("unix:");
        socket.push(qmp);
        socket.push(",server=on,wait=off");
        command.arg("-qmp").arg(socket);
    }
    command.args(&options.extra_args);
    command
}

/// Whether `board`'s QEMU machine has the virtio-mmio bus that
/// `-device virtio-*-device` plugs into (QEMU `virt`; not `raspi4b`).
pub fn has_virtio_mmio(board: &Board) -> bool {
    board.qemu.machine.split(',').next() == Some("virt")
}

/// The QEMU command that boots a Linux `kernel` and `initrd` directly, with
/// no Duet: the baseline the benchmarks compare Duet with. Same CPU model,
/// vCPU count, memory and interrupt controller (GICv3) as the personal VM
/// of the default persona set; console on stdio.
pub fn native_linux_command(kernel: &Path, initrd: &Path) -> Command {
    let mut command = native_command(kernel, 2, 256);
    command.arg("-initrd").arg(initrd).args(["-append", "console=ttyAMA0 quiet"]);
    command
}

/// The QEMU command that boots `kernel` (an arm64 Image) directly on `virt`
/// at EL1, with no Duet: `cpus` CPUs, `memory_mib` of RAM, a GICv3 (what
/// Duet's guests see), PSCI over HVC (QEMU's own, as there is no EL2),
/// no network; console on stdio.
pub fn native_command(kernel: &Path, cpus: u32, memory_mib: u32) -> Command {
    let mut command = Command::new(QEMU);
    command
        .args(["-M", "virt,gic-version=3", "-cpu", "max"])
        .args(["-smp", &cpus.to_string(), "-m", &format!("{memory_mib}M")])
        .args(["-nographic", "-no-reboot", "-nic", "none"])
        .arg("-kernel")
        .arg(kernel);
    command
}

/// After Duet reports a halt, how long QEMU gets to power off by itself.
const HALT_GRACE: Duration = Duration::from_secs(3);

/// Runs `command` with the console passed through to this terminal (input
/// too), and reports how the run ended. If Duet halts but the machine does
/// not power off, QEMU is stopped so the command always returns.
pub fn run_attached(mut command: Command) -> Result<(ExitStatus, Ending)> {
    let mut child = command
        .stdin(Stdio::inherit())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .with_context(|| format!("cannot start {QEMU}"))?;
    let mut stdout = child.stdout.take().expect("stdout is piped");
    let (halted_tx, halted_rx) = mpsc::channel();
    let copier = std::thread::spawn(move || {
        let mut ending = Ending::Unknown;
        let mut line = Vec::new();
        let mut buffer = [0u8; 4096];
        let mut out = std::io::stdout();
        while let Ok(n) = stdout.read(&mut buffer) {
            if n == 0 {
                break;
            }
            let _ = out.write_all(&buffer[..n]);
            let _ = out.flush();
            for &byte in &buffer[..n] {
                line.push(byte);
                if byte == b'\n' {
                    match Ending::of(&String::from_utf8_lossy(&line)) {
                        Ending::Unknown => {}
                        Ending::Halted => {
                            ending = Ending::Halted;
                            let _ = halted_tx.send(());
                        }
                        Ending::PoweredOff if ending == Ending::Unknown => {
                            ending = Ending::PoweredOff
                        }
                        Ending::PoweredOff => {}
                    }
                    line.clear();
                }
            }
        }
        ending
    });
    let status = loop {
        if let Some(status) = child.try_wait()? {
            break status;
        }
        if halted_rx.recv_timeout(Duration::from_millis(100)).is_ok() {
            std::thread::sleep(HALT_GRACE);
            if child.try_wait()?.is_none() {
                terminate(child.id());
            }
        }
    };
    let ending = copier.join().unwrap_or(Ending::Unknown);
    Ok((status, ending))
}

/// Asks a process to stop (SIGTERM lets QEMU restore the terminal).
pub fn terminate(pid: u32) {
    // SAFETY: kill has no memory-safety preconditions; at worst the process
    // is gone already and the call fails.
    unsafe { libc::kill(pid as libc::pid_t, libc::SIGTERM) };
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn endings_are_read_from_the_console() {
        assert_eq!(Ending::of("duet: powering off: nothing left to run\n"), Ending::PoweredOff);
        assert_eq!(Ending::of("duet: HALTED: panic on cpu 1: oops\n"), Ending::Halted);
        assert_eq!(Ending::of("duet: powering off: x\nduet: HALTED: y\n"), Ending::Halted);
        assert_eq!(Ending::of("[ 0.1] cpu0 INFO hello\n"), Ending::Unknown);
    }

    #[test]
    fn native_linux_matches_the_personal_vm() {
        let command = native_linux_command(Path::new("/k/Image"), Path::new("/k/initrd.cpio"));
        let args: Vec<_> = command.get_args().map(|a| a.to_string_lossy().into_owned()).collect();
        assert_eq!(
            args.join(" "),
            "-M virt,gic-version=3 -cpu max -smp 2 -m 256M -nographic -no-reboot -nic none \
             -kernel /k/Image -initrd /k/initrd.cpio -append console=ttyAMA0 quiet"
        );
    }

    #[test]
    fn command_follows_the_board_and_options() {
        let board = duet_boards::default_board();
        let options = Options {
            cpus: Some(2),
            append: Some("duet.log=debug".into()),
            package: Some("/tmp/p.pkg".into()),
            dtb: None,
            disk: Some("/tmp/d.img".into()),
            nic: true,
            screen: true,
            qmp: Some("/tmp/q.sock".into()),
            extra_args: vec!["-machine".into(), "virtualization=off".into()],
        };
        assert!(has_virtio_mmio(board));
        assert!(!has_virtio_mmio(duet_boards::by_name("rpi4").unwrap()));
        let command = command(board, Path::new("/tmp/duet.bin"), &options);
        let args: Vec<_> = command.get_args().map(|a| a.to_string_lossy().into_owned()).collect();
        let joined = args.join(" ");
        assert!(
            joined.starts_with(
                "-machine virt,virtualization=on,gic-version=3 -cpu max -m 2048M -smp 2"
            ),
            "{joined}"
        );
        assert!(
            joined.contains(
                "-kernel /tmp/duet.bin -append duet.log=debug -initrd /tmp/p.pkg \
                 -drive if=none,format=raw,id=disk0,file=/tmp/d.img \
                 -device virtio-blk-device,drive=disk0 \
                 -netdev user,id=net0 -device virtio-net-device,netdev=net0 \
                 -device virtio-gpu-device,xres=720,yres=1280 \
                 -device virtio-multitouch-device -device virtio-keyboard-device \
                 -qmp unix:/tmp/q.sock,server=on,wait=off -machine virtualization=off"
            ),
            "{joined}"
        );
    }

    #[test]
    fn the_pi_4_runs_on_raspi4b_with_its_tree_and_a_fixed_cpu_count() {
        let board = duet_boards::by_name("rpi4").unwrap();
        let options = Options {
            cpus: Some(2),
            dtb: Some("/k/bcm2711-rpi-4-b.dtb".into()),
            ..Options::default()
        };
        let command = command(board, Path::new("/tmp/duet.bin"), &options);
        let args: Vec<_> = command.get_args().map(|a| a.to_string_lossy().into_owned()).collect();
        assert_eq!(
            args.join(" "),
            "-machine raspi4b -cpu cortex-a72 -m 2048M -smp 4 -nographic -no-reboot \
             -kernel /tmp/duet.bin -dtb /k/bcm2711-rpi-4-b.dtb"
        );
        assert_eq!(board.qemu.dtb, Some("broadcom/bcm2711-rpi-4-b.dtb"));
    }
}
