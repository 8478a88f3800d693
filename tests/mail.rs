//! The mail guest (guests/mail, the corporate persona) boots on Duet from a
//! persona manifest: it finds its virtio console, entropy device, disk and
//! NIC in its device tree, opens (first formats) its store on the disk,
//! gets an address by DHCP over Duet's uplink, and exchanges a line over
//! TCP with a server this test runs on the host's loopback (10.0.2.2 from
//! inside QEMU's user network). A second boot opens the same store.

use duet_tests::{manifest, Machine};
use std::io::{BufRead, BufReader, Write};
use std::net::TcpListener;
use std::sync::mpsc;
use std::time::Duration;

const BOOT: Duration = Duration::from_secs(120);

/// One mail VM with a disk and a NIC on the uplink, as `name.toml` (its
/// disk image is `target/disk/<name>.img`), with `cmdline`.
fn mail_manifest(name: &str, cmdline: &str) -> String {
    mail_manifest_with(name, cmdline, "")
}

/// The same, with more keys for the VM (`extra`, TOML lines).
fn mail_manifest_with(name: &str, cmdline: &str, extra: &str) -> String {
    mail_manifest_sized(name, cmdline, extra, 4)
}

/// The same, with a disk of `disk_mib`.
fn mail_manifest_sized(name: &str, cmdline: &str, extra: &str, disk_mib: u32) -> String {
    let image = match xtask::image::build_mail() {
        Ok(image) => image.binary,
        Err(e) => panic!("cannot build the mail guest: {e:#}"),
    };
    let text = format!(
        "[[vm]]\nname = \"corporate\"\nrole = \"corporate\"\nkernel = {image:?}\n\
         cmdline = {cmdline:?}\nmemory_mib = 24\nvcpus = 1\ndisk_mib = {disk_mib}\nnic = true\nuplink = true\n{extra}"
    );
    manifest(name, &text).to_str().expect("a UTF-8 path").to_string()
}

/// Answers one connection's first line with its length; sends what it got.
fn serve_one_line(listener: TcpListener) -> mpsc::Receiver<String> {
    let (sender, receiver) = mpsc::channel();
    std::thread::spawn(move || {
        let Ok((mut stream, _)) = listener.accept() else { return };
        let mut reader = BufReader::new(stream.try_clone().expect("clone the stream"));
        let mut line = String::new();
        if reader.read_line(&mut line).is_ok() {
            let _ = stream.write_all(format!("host saw {} bytes\n", line.len()).as_bytes());
            let _ = sender.send(line);
        }
    });
    receiver
}

#[test]
fn the_mail_guest_finds_its_devices_gets_an_address_and_talks_tcp_to_the_host() {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind a loopback port");
    let port = listener.local_addr().unwrap().port();
    let received = serve_one_line(listener);
    let path = mail_manifest("mail-net", &format!("mail.hello=10.0.2.2:{port}"));

    let mut run = Machine::xtask(&["run", "--manifest", &path, "--new-disk"]);
    let exit = run.wait(BOOT);
    run.require(&[
        "[corporate] mail: virtio console at 0xa000000",
        "[corporate] mail: virtio rng at 0xa000200",
        "[corporate] mail: virtio disk at 0xa000400, 4096 KiB",
        // A new disk: the xtask made it ext4, the guest formats its log.
        "[corporate] mail: store open: 0 records, 0 of 4095 KiB used, 0 messages, 0 in the outbox",
        "[corporate] mail: virtio nic at 0xa000600, MAC 02:",
        "[corporate] mail: net: address 10.0.2.15/24 by DHCP, router 10.0.2.2",
        &format!("[corporate] mail: net: connected to 10.0.2.2:{port}, line sent"),
        "[corporate] mail: net: got \"host saw 26 bytes\"",
        "duet: vm corporate powered off",
        "duet: powering off: every VM has powered off",
    ]);
    if !exit.success() {
        run.fail(&format!("`cargo xtask run` exited with {exit}"));
    }
    match received.recv_timeout(Duration::from_secs(5)) {
        Ok(line) if line == "hello from the mail guest\n" => {}
        other => run.fail(&format!("the host's server received {other:?}")),
    }

    // The same disk again: the store is found, not formatted anew.
    let path = mail_manifest("mail-net", "");
    let mut run = Machine::xtask(&["run", "--manifest", &path]);
    let exit = run.wait(BOOT);
    run.require(&[
        "[corporate] mail: store open: 0 records",
        "[corporate] mail: net: address 10.0.2.15/24 by DHCP",
        "[corporate] mail: nothing more to do yet; powering off",
    ]);
    run.forbid("mail: net: connected");
    if !exit.success() {
        run.fail(&format!("`cargo xtask run` exited with {exit}"));
    }
}

#[test]
fn a_bad_mail_option_stops_the_guest_with_a_message_and_duet_goes_on() {
    let path = mail_manifest("mail-bad-option", "mail.hello=nowhere mail.debug");
    let mut run = Machine::xtask(&["run", "--manifest", &path, "--new-disk"]);
    let exit = run.wait(BOOT);
    run.require(&[
        "[corporate] mail: bad command line \"mail.hello=nowhere mail.debug\": \"mail.hello=nowhere\": expected an IPv4 address and port, A.B.C.D:PORT; powering off",
        "duet: powering off: every VM has powered off",
    ]);
    if !exit.success() {
        run.fail(&format!("`cargo xtask run` exited with {exit}"));
    }
}

/// Boots the guest with `mail.fault=fault` and returns the run, checked:
/// the guest printed one `mail: fatal:` line and powered off, and Duet went
/// on to power the machine off cleanly (that VM was the last).
fn fatal_fault(fault: &str) -> Machine {
    let path = mail_manifest(&format!("mail-fault-{fault}"), &format!("mail.fault={fault}"));
    let mut run = Machine::xtask(&["run", "--manifest", &path, "--new-disk"]);
    let exit = run.wait(BOOT);
    run.require(&[
        "[corporate] mail: committing the fault",
        "duet: vm corporate powered off",
        "duet: powering off: every VM has powered off",
    ]);
    run.forbid("duet: HALTED");
    // The guest says nothing after its fatal line: it powered off at once.
    let console = run.console();
    let fatal = console.find("[corporate] mail: fatal: ").unwrap_or_else(|| {
        run.fail("the console lacks a \"mail: fatal:\" line");
    });
    let line = console[fatal..].lines().next().unwrap_or("").to_string();
    if !line.ends_with("; powering off") || console[fatal..].contains("] mail: started") {
        run.fail(&format!("the fatal line {line:?} is not the guest's last word"));
    }
    if !exit.success() {
        run.fail(&format!("`cargo xtask run` exited with {exit}"));
    }
    run
}

#[test]
fn a_stack_overflow_faults_on_the_guard_page_and_the_guest_says_so_and_powers_off() {
    let mut run = fatal_fault("stack-overflow");
    run.require(&["[corporate] mail: fatal: stack overflow (data abort at FAR 0x40"]);
}

#[test]
fn a_load_from_an_unmapped_address_is_named_and_the_guest_powers_off() {
    let mut run = fatal_fault("unmapped");
    run.require(&["[corporate] mail: fatal: data abort ESR=0x96", "FAR=0x100000000 ELR=0x40"]);
    run.forbid("stack overflow");
}

#[test]
fn a_fatal_fault_in_one_mail_vm_leaves_the_other_running() {
    const KEY: Duration = Duration::from_secs(30);
    let image = match xtask::image::build_mail() {
        Ok(image) => image.binary,
        Err(e) => panic!("cannot build the mail guest: {e:#}"),
    };
    // Two mail guests: the personal one opens its interface (and has the
    // console's input), the corporate one overflows its stack at once.
    let vm = |name: &str, cmdline: &str| {
        format!(
            "[[vm]]\nname = \"{name}\"\nrole = \"{name}\"\nkernel = {image:?}\n\
             cmdline = {cmdline:?}\nmemory_mib = 24\nvcpus = 1\ndisk_mib = 4\n"
        )
    };
    let text = vm("personal", "mail.ui") + &vm("corporate", "mail.fault=stack-overflow");
    let path = manifest("mail-fault-beside", &text);
    let path = path.to_str().expect("a UTF-8 path");
    let mut run = Machine::xtask(&["run", "--manifest", path, "--new-disk"]);
    run.expect("[corporate] mail: fatal: stack overflow (data abort at FAR 0x40", BOOT);
    run.expect("duet: vm corporate powered off", BOOT);
    run.expect("[personal] inbox: 0 messages, 0 unread", BOOT);
    // The other VM still answers keys after the fault.
    let mark = run.mark();
    run.send("s");
    run.expect_since(mark, "[personal] status: 0 messages; outbox 0 waiting", KEY);
    run.send("q");
    let exit = run.wait(KEY);
    run.require(&[
        "[personal] mail: interface closed; powering off",
        "duet: powering off: every VM has powered off",
    ]);
    if !exit.success() {
        run.fail(&format!("`cargo xtask run` exited with {exit}"));
    }
}

#[test]
fn a_message_composed_on_the_console_waits_in_the_outbox_across_a_reboot() {
    const KEY: Duration = Duration::from_secs(30);
    let path = mail_manifest("mail-ui", "mail.ui");
    let mut run = Machine::xtask(&["run", "--manifest", &path, "--new-disk"]);
    run.expect("[corporate] inbox: 0 messages, 0 unread", BOOT);
    run.send("c");
    run.expect("To: ", KEY);
    run.send("bob@example.com\r");
    run.expect("Subject: ", KEY);
    // A line at a time: the UART's receive FIFO holds 32 bytes.
    run.send("Status report\r");
    run.expect("(body; a line with only . ends it)", KEY);
    run.send("All is well.\r");
    run.expect("[corporate] All is well.\n", KEY);
    run.send(".\r");
    run.expect("[corporate] mail: queued as outbox entry 1", KEY);
    let mark = run.mark();
    run.send("s");
    run.expect_since(mark, "[corporate] status: 0 messages; outbox 1 waiting", KEY);
    run.send("q");
    let exit = run.wait(KEY);
    run.require(&["[corporate] mail: interface closed; powering off"]);
    if !exit.success() {
        run.fail(&format!("`cargo xtask run` exited with {exit}"));
    }

    // The entry is still there after a reboot (the same disk image).
    let mut run = Machine::xtask(&["run", "--manifest", &path]);
    run.expect("[corporate] mail: store open: 1 records", BOOT);
    run.expect("[corporate] inbox: 0 messages", BOOT);
    run.send("s");
    run.expect("[corporate] status: 0 messages; outbox 1 waiting", KEY);
    run.send("q");
    run.wait(KEY);
}

#[test]
fn provisioning_reaches_the_guest_from_the_manifest_and_its_password_is_never_shown() {
    // A stand-in CA (a DER SEQUENCE); TLS will check a real one.
    let mut der = vec![0x30u8, 0x82, 0x01, 0x00];
    der.extend((0..252).map(|i| i as u8));
    let pem: String = {
        use std::fmt::Write as _;
        let b64 = base64_encode(&der);
        let mut out = String::from("-----BEGIN CERTIFICATE-----\n");
        for chunk in b64.as_bytes().chunks(64) {
            let _ = writeln!(out, "{}", std::str::from_utf8(chunk).unwrap());
        }
        out + "-----END CERTIFICATE-----\n"
    };
    let provision = format!(
        "imap = 10.0.2.2:993\nsmtp = 10.0.2.2:465\nserver_name = mail.test\nuser = alice\n\
         password = hunter2-not-shown\nfrom = alice@mail.test\nsync_seconds = 120\n{pem}"
    );
    let file = xtask::target_dir().join("test-personas").join("mail-provision.txt");
    std::fs::create_dir_all(file.parent().unwrap()).unwrap();
    std::fs::write(&file, provision).expect("write the provisioning file");
    let path = mail_manifest_with("mail-provision", "", &format!("initrd = {file:?}\n"));
    let mut run = Machine::xtask(&["run", "--manifest", &path, "--new-disk"]);
    run.expect(
        "[corporate] mail: provisioned: alice at mail.test (IMAP 10.0.2.2:993, SMTP 10.0.2.2:465, every 120 s, CA of 256 bytes)",
        BOOT,
    );
    // Provisioned and asked for nothing else: the long-running client.
    run.expect("[corporate] mail: client running: sync every 120 s", BOOT);
    run.forbid("hunter2");
    run.kill();

    // Without a file the guest says it works offline.
    let path = mail_manifest("mail-unprovisioned", "");
    let mut run = Machine::xtask(&["run", "--manifest", &path, "--new-disk"]);
    run.wait(BOOT);
    run.require(&["[corporate] mail: not provisioned (no provisioning file); offline only"]);
}

/// Standard base64 with padding (the test's own, to need no crate).
fn base64_encode(bytes: &[u8]) -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::new();
    for chunk in bytes.chunks(3) {
        let n = chunk.iter().enumerate().fold(0u32, |n, (i, &b)| n | u32::from(b) << (16 - 8 * i));
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(ALPHABET[(n >> (18 - 6 * i) & 63) as usize] as char);
            } else {
                out.push('=');
            }
        }
    }
    out
}

/// Runs `openssl` with `args` in `dir`; fails the test if it cannot.
fn openssl(dir: &std::path::Path, args: &[&str]) {
    let status = std::process::Command::new("openssl")
        .current_dir(dir)
        .args(args)
        .stderr(std::process::Stdio::null())
        .status()
        .expect("this test needs openssl (apt-get install openssl)");
    assert!(status.success(), "openssl {args:?} failed");
}

/// A CA (`name`.pem/.key) and a server certificate it signed for
/// `mail.test` (`name`-server.pem/.key), P-256.
fn make_ca_and_server(dir: &std::path::Path, name: &str) {
    let ec = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes"];
    let (ca, key) = (format!("{name}.pem"), format!("{name}.key"));
    let subject = format!("/CN=Test {name} CA");
    let mut args = vec!["req", "-x509"];
    args.extend(ec);
    args.extend(["-keyout", &key, "-out", &ca, "-days", "30", "-subj", &subject]);
    openssl(dir, &args);
    let (server, server_key, csr) =
        (format!("{name}-server.pem"), format!("{name}-server.key"), format!("{name}.csr"));
    let mut args = vec!["req"];
    args.extend(ec);
    args.extend(["-keyout", &server_key, "-out", &csr, "-subj", "/CN=mail.test"]);
    openssl(dir, &args);
    std::fs::write(
        dir.join("ext.cnf"),
        "subjectAltName=DNS:mail.test\nbasicConstraints=CA:FALSE\n",
    )
    .unwrap();
    openssl(
        dir,
        &[
            "x509",
            "-req",
            "-in",
            &csr,
            "-CA",
            &ca,
            "-CAkey",
            &key,
            "-CAcreateserial",
            "-out",
            &server,
            "-days",
            "30",
            "-extfile",
            "ext.cnf",
        ],
    );
}

/// A child process stopped when dropped (also when a test fails).
struct Stopped(std::process::Child);

impl Drop for Stopped {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// `openssl s_server` for TLS 1.3 connections with `name`'s server
/// certificate, answering each line reversed; its port.
fn tls_server(dir: &std::path::Path, name: &str) -> (Stopped, u16) {
    let port = TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let child = std::process::Command::new("openssl")
        .current_dir(dir)
        .args(["s_server", "-rev", "-tls1_3", "-accept"])
        .arg(port.to_string())
        .args(["-cert", &format!("{name}-server.pem"), "-key", &format!("{name}-server.key")])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("start openssl s_server");
    // Until it listens.
    for _ in 0..100 {
        if std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            std::thread::sleep(Duration::from_millis(50));
        } else {
            break;
        }
    }
    (Stopped(child), port)
}

/// Boots the mail guest provisioned with `ca`'s certificate, `server_name`
/// and the IMAP address at `port`, checking TLS there.
fn boot_tls_check(
    dir: &std::path::Path,
    test: &str,
    ca: &str,
    server_name: &str,
    port: u16,
) -> Machine {
    let pem = std::fs::read_to_string(dir.join(format!("{ca}.pem"))).unwrap();
    let file = dir.join(format!("{test}.txt"));
    let provision = format!(
        "imap = 10.0.2.2:{port}\nsmtp = 10.0.2.2:465\nserver_name = {server_name}\nuser = alice\n\
         password = pw\nfrom = alice@mail.test\n{pem}"
    );
    std::fs::write(&file, provision).unwrap();
    let path = mail_manifest_with(test, "mail.tls-hello", &format!("initrd = {file:?}\n"));
    let mut run = Machine::xtask(&["run", "--manifest", &path, "--new-disk"]);
    let exit = run.wait(BOOT);
    if !exit.success() {
        run.fail(&format!("`cargo xtask run` exited with {exit}"));
    }
    run
}

#[test]
fn tls_reaches_a_server_of_the_corporate_ca_and_refuses_another_ca_or_name() {
    let dir = xtask::target_dir().join("test-personas").join("mail-tls");
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    make_ca_and_server(&dir, "corporate");
    make_ca_and_server(&dir, "other");

    let (server, port) = tls_server(&dir, "corporate");
    let mut run = boot_tls_check(&dir, "mail-tls-good", "corporate", "mail.test", port);
    run.require(&["[corporate] mail: tls: mail.test verified, got \"tseug liam eht morf olleh\""]);
    drop(server);

    // A server whose certificate another CA signed: refused, nothing sent.
    let (server, port) = tls_server(&dir, "other");
    let mut run = boot_tls_check(&dir, "mail-tls-other-ca", "corporate", "mail.test", port);
    run.require(&[&format!("[corporate] mail: tls: connection to 10.0.2.2:{port} refused: ")]);
    run.forbid("verified");
    drop(server);

    // The corporate CA's server, but not the name the provisioning says.
    let (server, port) = tls_server(&dir, "corporate");
    let mut run = boot_tls_check(&dir, "mail-tls-wrong-name", "corporate", "imap.test", port);
    run.require(&[&format!("[corporate] mail: tls: connection to 10.0.2.2:{port} refused: ")]);
    run.forbid("verified");
    drop(server);
}

/// A throwaway Dovecot (Debian's `dovecot-imapd`) on the host's loopback:
/// IMAP over implicit TLS 1.3 only, one user `alice`, a Maildir under
/// `dir`, the server certificate of `make_ca_and_server(dir, "corporate")`.
struct Dovecot {
    child: std::process::Child,
    port: u16,
    maildir: std::path::PathBuf,
    /// Who owns the mail files (Dovecot will not serve root's).
    owner: (u32, u32),
}

impl Dovecot {
    fn start(dir: &std::path::Path) -> Dovecot {
        let binary = std::path::Path::new("/usr/sbin/dovecot");
        assert!(
            binary.exists(),
            "this test needs Debian's Dovecot: apt-get install dovecot-imapd (its service need not run)"
        );
        let port = TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
        // As root, mail belongs to Debian's `mail` user (8); otherwise to us.
        let uid = unsafe_free_uid();
        let owner = if uid == 0 { (8, 8) } else { (uid, uid) };
        let home = dir.join("home");
        let maildir = home.join("alice/Maildir");
        for sub in ["new", "cur", "tmp"] {
            std::fs::create_dir_all(maildir.join(sub)).unwrap();
        }
        std::fs::create_dir_all(dir.join("run")).unwrap();
        std::fs::write(dir.join("passwd"), "alice:{PLAIN}s3cret::::::\n").unwrap();
        let d = dir.display();
        let mut config = format!(
            "base_dir = {d}/run\nstate_dir = {d}/run\nprotocols = imap\nlisten = 127.0.0.1\n\
             log_path = {d}/dovecot.log\nssl = required\nssl_cert = <{d}/corporate-server.pem\n\
             ssl_key = <{d}/corporate-server.key\nssl_min_protocol = TLSv1.3\n\
             disable_plaintext_auth = yes\nauth_mechanisms = plain\nfirst_valid_uid = {}\n\
             passdb {{\n  driver = passwd-file\n  args = {d}/passwd\n}}\n\
             userdb {{\n  driver = static\n  args = uid={} gid={} home={d}/home/%u\n}}\n\
             mail_location = maildir:~/Maildir\n\
             service imap-login {{\n  inet_listener imap {{\n    port = 0\n  }}\n\
             inet_listener imaps {{\n    port = {port}\n    ssl = yes\n  }}\n}}\n\
             service auth {{\n  unix_listener auth-client {{\n    mode = 0666\n  }}\n}}\n",
            owner.0, owner.0, owner.1
        );
        if uid != 0 {
            let user = std::env::var("USER").unwrap_or_default();
            config += &format!("default_internal_user = {user}\ndefault_login_user = {user}\n");
        }
        std::fs::write(dir.join("dovecot.conf"), config).unwrap();
        chown_tree(&home, owner);
        let child = std::process::Command::new(binary)
            .args(["-F", "-c"])
            .arg(dir.join("dovecot.conf"))
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .expect("start dovecot");
        for _ in 0..100 {
            if std::net::TcpStream::connect(("127.0.0.1", port)).is_ok() {
                break;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        Dovecot { child, port, maildir, owner }
    }

    /// Delivers a message into alice's inbox, as a local delivery agent
    /// would (a file in Maildir/new).
    fn deliver(&self, name: &str, message: &str) {
        let path = self.maildir.join("new").join(format!("{name}.M1P1.duet-test"));
        std::fs::write(&path, message).unwrap();
        chown_tree(&path, self.owner);
    }
}

impl Drop for Dovecot {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn unsafe_free_uid() -> u32 {
    let out = std::process::Command::new("id").arg("-u").output().expect("run id -u");
    String::from_utf8_lossy(&out.stdout).trim().parse().expect("a uid")
}

fn chown_tree(path: &std::path::Path, (uid, gid): (u32, u32)) {
    let status = std::process::Command::new("chown")
        .args(["-R", &format!("{uid}:{gid}")])
        .arg(path)
        .status()
        .expect("run chown");
    assert!(status.success(), "chown {}", path.display());
}

#[test]
fn mail_delivered_on_the_host_appears_in_the_guests_inbox_once() {
    let dir = xtask::target_dir().join("test-personas").join("mail-dovecot");
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    make_ca_and_server(&dir, "corporate");
    let dovecot = Dovecot::start(&dir);
    dovecot.deliver(
        "1",
        "From: Carol <carol@mail.test>\r\nTo: alice@mail.test\r\nSubject: Welcome to Duet mail\r\n\
         Date: Sun, 06 Dec 2026 07:00:00 +0000\r\nMessage-ID: <w1@mail.test>\r\n\r\nHello Alice.\r\n",
    );
    let pem = std::fs::read_to_string(dir.join("corporate.pem")).unwrap();
    let file = dir.join("provision.txt");
    std::fs::write(
        &file,
        format!(
            "imap = 10.0.2.2:{}\nsmtp = 10.0.2.2:465\nserver_name = mail.test\nuser = alice\n\
             password = s3cret\nfrom = alice@mail.test\n{pem}",
            dovecot.port
        ),
    )
    .unwrap();
    let path = mail_manifest_with("mail-dovecot", "mail.sync", &format!("initrd = {file:?}\n"));

    let mut run = Machine::xtask(&["run", "--manifest", &path, "--new-disk"]);
    run.wait(BOOT);
    run.require(&[
        "[corporate] mail: sync: 1 new messages, 0 flag updates; 1 stored",
        "[corporate] inbox: 1 messages, 1 unread",
        "[corporate] >N Carol <carol@mail.test>   Welcome to Duet mail",
    ]);

    // A second message arrives; the next sync (same disk) fetches only it.
    dovecot.deliver(
        "2",
        "From: Dan <dan@mail.test>\r\nTo: alice@mail.test\r\nSubject: Second\r\n\r\nAgain.\r\n",
    );
    let mut run = Machine::xtask(&["run", "--manifest", &path]);
    run.wait(BOOT);
    run.require(&[
        "[corporate] mail: store open: 2 records",
        "[corporate] mail: sync: 1 new messages, 1 flag updates; 2 stored",
        "[corporate] inbox: 2 messages, 2 unread",
        "[corporate] >N Dan <dan@mail.test>",
        "[corporate]  N Carol <carol@mail.test>",
    ]);
    drop(dovecot);
}

/// A throwaway Postfix (Debian's `postfix`) on the host's loopback:
/// submission over implicit TLS 1.3 only, AUTH PLAIN through `dovecot`'s
/// user, delivering mail for `mail.test` into Dovecot's Maildirs. Postfix
/// runs only as root, and its `postfix` command takes another
/// configuration directory only when the system's main.cf lists it
/// (`alternate_config_directories`, set here).
struct Postfix {
    config: std::path::PathBuf,
}

impl Postfix {
    /// Starts it on `port`, with implicit TLS.
    fn start(dir: &std::path::Path, dovecot: &Dovecot, port: u16) -> Postfix {
        Postfix::start_with(dir, dovecot, port, false)
    }

    /// Starts it on `port`, with implicit TLS or (`starttls`) plaintext
    /// until STARTTLS, which it requires before anything else.
    fn start_with(dir: &std::path::Path, dovecot: &Dovecot, port: u16, starttls: bool) -> Postfix {
        assert!(
            std::path::Path::new("/usr/sbin/postfix").exists(),
            "this test needs Debian's Postfix: apt-get install postfix (its service need not run)"
        );
        assert_eq!(unsafe_free_uid(), 0, "Postfix runs only as root; run this test as root");
        let config = dir.join("postfix");
        let (queue, data) = (dir.join("postfix-queue"), dir.join("postfix-data"));
        for d in [&config, &queue, &data] {
            std::fs::create_dir_all(d).unwrap();
        }
        chown_named(&data, "postfix");
        let d = dir.display();
        let (uid, gid) = dovecot.owner;
        let main = format!(
            "compatibility_level = 3.6\nqueue_directory = {}\ndata_directory = {}\n\
             inet_interfaces = 127.0.0.1\ninet_protocols = ipv4\nmyhostname = mail.test\n\
             mydestination =\nvirtual_mailbox_domains = mail.test\nvirtual_mailbox_base = {d}/home\n\
             virtual_mailbox_maps = inline:{{ alice@mail.test=alice/Maildir/ }}\n\
             virtual_uid_maps = static:{uid}\nvirtual_gid_maps = static:{gid}\nvirtual_minimum_uid = {uid}\n\
             smtpd_tls_cert_file = {d}/corporate-server.pem\nsmtpd_tls_key_file = {d}/corporate-server.key\n\
             smtpd_tls_security_level = encrypt\nsmtpd_tls_mandatory_protocols = >=TLSv1.3\n\
             smtpd_sasl_auth_enable = yes\nsmtpd_sasl_type = dovecot\nsmtpd_sasl_path = {d}/run/auth-client\n\
             smtpd_relay_restrictions = permit_sasl_authenticated, reject\n\
             smtpd_recipient_restrictions = permit_sasl_authenticated, reject\n\
             maillog_file_prefixes = {d}\nmaillog_file = {d}/postfix.log\n",
            queue.display(),
            data.display()
        );
        std::fs::write(config.join("main.cf"), main).unwrap();
        let mut master = std::fs::read_to_string("/etc/postfix/master.cf").unwrap();
        master += &format!("{port} inet n - n - - smtpd\n");
        if !starttls {
            master += "  -o smtpd_tls_wrappermode=yes\n";
        }
        std::fs::write(config.join("master.cf"), master).unwrap();
        let run = |args: &[&str]| {
            let status = std::process::Command::new(args[0]).args(&args[1..]).status().unwrap();
            assert!(status.success(), "{args:?} failed");
        };
        let config_dir = config.to_str().unwrap().to_string();
        let listed = std::process::Command::new("postconf")
            .args(["-h", "alternate_config_directories"])
            .output()
            .unwrap();
        let listed = String::from_utf8_lossy(&listed.stdout).trim().to_string();
        if !listed.split([',', ' ']).any(|d| d == config_dir) {
            let value = if listed.is_empty() {
                config_dir.clone()
            } else {
                format!("{listed}, {config_dir}")
            };
            run(&["postconf", "-e", &format!("alternate_config_directories = {value}")]);
        }
        run(&["postfix", "-c", &config_dir, "start"]);
        for _ in 0..100 {
            if std::net::TcpStream::connect(("127.0.0.1", port)).is_ok() {
                break;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        Postfix { config }
    }
}

impl Drop for Postfix {
    fn drop(&mut self) {
        let _ =
            std::process::Command::new("postfix").arg("-c").arg(&self.config).arg("stop").status();
    }
}

fn chown_named(path: &std::path::Path, user: &str) {
    let status =
        std::process::Command::new("chown").arg(user).arg(path).status().expect("run chown");
    assert!(status.success(), "chown {user} {}", path.display());
}

#[test]
fn a_message_composed_in_the_guest_waits_while_the_server_is_down_then_arrives_once() {
    const KEY: Duration = Duration::from_secs(30);
    let dir = xtask::target_dir().join("test-personas").join("mail-submit");
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    make_ca_and_server(&dir, "corporate");
    let dovecot = Dovecot::start(&dir);
    // Postfix starts later: first the server is down.
    let smtp_port = TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let pem = std::fs::read_to_string(dir.join("corporate.pem")).unwrap();
    let file = dir.join("provision.txt");
    std::fs::write(
        &file,
        format!(
            "imap = 10.0.2.2:{}\nsmtp = 10.0.2.2:{}\nserver_name = mail.test\nuser = alice\n\
             password = s3cret\nfrom = alice@mail.test\n{pem}",
            dovecot.port, smtp_port
        ),
    )
    .unwrap();
    let initrd = format!("initrd = {file:?}\n");

    // Compose on the console (offline: nothing is sent yet).
    let path = mail_manifest_with("mail-submit", "mail.ui", &initrd);
    let mut run = Machine::xtask(&["run", "--manifest", &path, "--new-disk"]);
    run.expect("[corporate] inbox: 0 messages", BOOT);
    run.send("c");
    run.expect("To: ", KEY);
    run.send("alice@mail.test\r");
    run.expect("Subject: ", KEY);
    run.send("Sent from Duet\r");
    run.expect("(body; a line with only . ends it)", KEY);
    run.send("Hello from the guest.\r");
    run.expect("[corporate] Hello from the guest.\n", KEY);
    run.send(".\r");
    run.expect("[corporate] mail: queued as outbox entry 1", KEY);
    run.send("q");
    run.wait(KEY);

    // The server is down: the message waits in the outbox.
    let path = mail_manifest_with("mail-submit", "mail.send", &initrd);
    let mut run = Machine::xtask(&["run", "--manifest", &path]);
    run.wait(BOOT);
    run.require(&[&format!("[corporate] mail: net: no TCP connection to 10.0.2.2:{smtp_port}")]);
    run.forbid("mail: send: outbox entry 1 sent");

    // The server is back: it arrives, headers and body intact.
    let postfix = Postfix::start(&dir, &dovecot, smtp_port);
    let path = mail_manifest_with("mail-submit", "mail.send", &initrd);
    let mut run = Machine::xtask(&["run", "--manifest", &path]);
    run.wait(BOOT);
    run.require(&["[corporate] mail: send: outbox entry 1 sent"]);
    let delivered = wait_for_mail(&dovecot, 1);
    let text = std::fs::read_to_string(&delivered[0]).unwrap();
    for part in [
        "From: <alice@mail.test>\n",
        "To: alice@mail.test\n",
        "Subject: Sent from Duet\n",
        "Message-ID: <",
        "\n\nHello from the guest.\n",
    ] {
        assert!(text.contains(part), "{part:?} not in the delivered message:\n{text}");
    }

    // Once: the next boot sends nothing again, and the sync brings it in.
    let path = mail_manifest_with("mail-submit", "mail.send", &initrd);
    let mut run = Machine::xtask(&["run", "--manifest", &path]);
    run.wait(BOOT);
    run.forbid("mail: send: outbox entry");
    let path = mail_manifest_with("mail-submit", "mail.sync", &initrd);
    let mut run = Machine::xtask(&["run", "--manifest", &path]);
    run.wait(BOOT);
    run.require(&["[corporate] mail: sync: 1 new messages", "Sent from Duet"]);
    std::thread::sleep(Duration::from_secs(1));
    let count = std::fs::read_dir(dovecot.maildir.join("new")).unwrap().count()
        + std::fs::read_dir(dovecot.maildir.join("cur")).unwrap().count();
    assert_eq!(count, 1, "the message was delivered more than once");
    drop(postfix);
}

/// The messages in alice's Maildir once there are `n` (Postfix delivers
/// in the background), within 30 s. Both `new` and `cur`: Dovecot moves a
/// message to `cur` once a session has seen it (the guest's sync may come
/// first).
fn wait_for_mail(dovecot: &Dovecot, n: usize) -> Vec<std::path::PathBuf> {
    for _ in 0..300 {
        let files: Vec<_> = ["new", "cur"]
            .iter()
            .flat_map(|sub| std::fs::read_dir(dovecot.maildir.join(sub)).unwrap().flatten())
            .map(|e| e.path())
            .collect();
        if files.len() >= n {
            return files;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    panic!("no mail delivered to {}", dovecot.maildir.display());
}

/// Writes `dir`/provision.txt for the corporate CA of `dir`, Dovecot's
/// port and `smtp_port`, syncing every `sync_seconds`; its `initrd` line.
fn provision_file(
    dir: &std::path::Path,
    imap_port: u16,
    smtp_port: u16,
    sync_seconds: u32,
) -> String {
    let pem = std::fs::read_to_string(dir.join("corporate.pem")).unwrap();
    let file = dir.join("provision.txt");
    std::fs::write(
        &file,
        format!(
            "imap = 10.0.2.2:{imap_port}\nsmtp = 10.0.2.2:{smtp_port}\nserver_name = mail.test\nuser = alice\n\
             password = s3cret\nfrom = alice@mail.test\nsync_seconds = {sync_seconds}\n{pem}"
        ),
    )
    .unwrap();
    format!("initrd = {file:?}\n")
}

/// A fresh directory for `test` under target/test-personas, with the
/// corporate CA and its server certificate.
fn test_dir(test: &str) -> std::path::PathBuf {
    let dir = xtask::target_dir().join("test-personas").join(test);
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    make_ca_and_server(&dir, "corporate");
    dir
}

#[test]
fn the_running_client_shows_mail_delivered_while_it_runs_without_a_reboot() {
    const SYNC: Duration = Duration::from_secs(90);
    let dir = test_dir("mail-run-inbox");
    let dovecot = Dovecot::start(&dir);
    dovecot.deliver(
        "1",
        "From: Carol <carol@mail.test>\r\nTo: alice@mail.test\r\nSubject: Before boot\r\n\r\nOne.\r\n",
    );
    let unused = TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let initrd = provision_file(&dir, dovecot.port, unused, 10);
    // No word on the command line: a provisioned guest runs the client.
    let path = mail_manifest_with("mail-run-inbox", "", &initrd);
    let mut run = Machine::xtask(&["run", "--manifest", &path, "--new-disk"]);
    run.expect(
        "[corporate] mail: client running: sync every 10 s, outbox sent when it can; waits in WFI",
        BOOT,
    );
    run.expect("[corporate] mail: sync: 1 new messages", SYNC);
    run.expect("[corporate] >N Carol <carol@mail.test>   Before boot", SYNC);

    // Delivered while the guest runs: it shows up by itself.
    let mark = run.mark();
    dovecot.deliver(
        "2",
        "From: Dan <dan@mail.test>\r\nTo: alice@mail.test\r\nSubject: While running\r\n\r\nTwo.\r\n",
    );
    run.expect_since(
        mark,
        "[corporate] mail: sync: 1 new messages, 1 flag updates; 2 stored",
        SYNC,
    );
    let listing = run.expect_since(mark, "[corporate]  N Carol <carol@mail.test>", SYNC);
    assert!(listing.contains("[corporate] inbox: 2 messages, 2 unread"), "{listing}");
    assert!(listing.contains("[corporate] >N Dan <dan@mail.test>"), "{listing}");
    assert!(listing.contains("While running"), "{listing}");

    // The status: when it last synced, and that it sleeps in WFI.
    let mark = run.mark();
    run.send("s");
    let status = run.expect_since(mark, " WFI sleeps", SYNC);
    assert!(status.contains("status: 2 messages; outbox 0 waiting;"), "{status}");
    assert!(status.contains("last sync at uptime "), "{status}");
    assert!(status.contains(", next in ") && !status.contains("offline"), "{status}");
    run.send("q");
    run.expect("[corporate] mail: interface closed; powering off", SYNC);
    run.wait(SYNC);
    drop(dovecot);
}

#[test]
fn in_one_run_a_message_waits_while_the_server_is_down_then_arrives_once_by_itself() {
    const WAIT: Duration = Duration::from_secs(90);
    const KEY: Duration = Duration::from_secs(30);
    let dir = test_dir("mail-run-outbox");
    let dovecot = Dovecot::start(&dir);
    // Postfix starts later: first the submission server is down.
    let smtp_port = TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let initrd = provision_file(&dir, dovecot.port, smtp_port, 10);
    let path = mail_manifest_with("mail-run-outbox", "mail.run", &initrd);
    let mut run = Machine::xtask(&["run", "--manifest", &path, "--new-disk"]);
    run.expect("[corporate] mail: client running", BOOT);
    run.expect("[corporate] inbox: 0 messages", BOOT);
    run.send("c");
    run.expect("To: ", KEY);
    run.send("alice@mail.test\r");
    run.expect("Subject: ", KEY);
    run.send("While the server was down\r");
    run.expect("(body; a line with only . ends it)", KEY);
    run.send("Queued, then sent by itself.\r");
    run.expect("[corporate] Queued, then sent by itself.\n", KEY);
    run.send(".\r");
    run.expect("[corporate] mail: queued as outbox entry 1", KEY);
    run.expect("[corporate] mail: sending: offline since uptime 0:", WAIT);
    run.expect(&format!("send: no TCP connection to 10.0.2.2:{smtp_port}; 1 waiting"), WAIT);
    let mark = run.mark();
    run.send("s");
    let status = run.expect_since(mark, " WFI sleeps", KEY);
    assert!(status.contains("status: 0 messages; outbox 1 waiting;"), "{status}");
    assert!(status.contains("sending: offline since uptime 0:"), "{status}");
    assert!(status.contains(", 1 waiting, next attempt in "), "{status}");

    // The server comes back; nothing is typed: the retry sends it.
    let mark = run.mark();
    let postfix = Postfix::start(&dir, &dovecot, smtp_port);
    run.expect_since(mark, "[corporate] mail: send: outbox entry 1 sent", WAIT);
    run.expect_since(mark, "[corporate] mail: sending: online again at uptime ", WAIT);
    let delivered = wait_for_mail(&dovecot, 1);
    let text = std::fs::read_to_string(&delivered[0]).unwrap();
    for part in ["Subject: While the server was down\n", "\n\nQueued, then sent by itself.\n"] {
        assert!(text.contains(part), "{part:?} not in the delivered message:\n{text}");
    }
    // The sync brings it in; two more sync intervals send nothing again.
    run.expect_since(mark, "[corporate] mail: sync: 1 new messages", WAIT);
    std::thread::sleep(Duration::from_secs(25));
    let count = std::fs::read_dir(dovecot.maildir.join("new")).unwrap().count()
        + std::fs::read_dir(dovecot.maildir.join("cur")).unwrap().count();
    assert_eq!(count, 1, "the message was delivered more than once");
    let after = run.console()[mark..].to_string();
    assert_eq!(after.matches("mail: send: outbox entry").count(), 1, "{after}");
    let mark = run.mark();
    run.send("s");
    let status = run.expect_since(mark, " WFI sleeps", KEY);
    assert!(status.contains("status: 1 messages; outbox 0 waiting;"), "{status}");
    run.send("q");
    run.wait(KEY);
    drop(postfix);
}

#[test]
fn qemu_killed_mid_sync_loses_nothing_stored_and_the_next_sync_has_no_duplicates() {
    const WAIT: Duration = Duration::from_secs(300);
    const MESSAGES: usize = 24;
    let dir = test_dir("mail-run-kill");
    let dovecot = Dovecot::start(&dir);
    // Large enough that the sync takes a while: about 2 MiB in all.
    let filler = "All work and no play makes a long message.\r\n".repeat(2000);
    for n in 1..=MESSAGES {
        dovecot.deliver(
            &format!("{n:03}"),
            &format!(
                "From: Bulk <bulk@mail.test>\r\nTo: alice@mail.test\r\nSubject: Bulk message {n:03}\r\n\r\n{filler}"
            ),
        );
    }
    let unused = TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let initrd = provision_file(&dir, dovecot.port, unused, 30);
    let path = mail_manifest_sized("mail-run-kill", "mail.run", &initrd, 16);
    let mut run = Machine::xtask(&["run", "--manifest", &path, "--new-disk"]);
    run.expect("[corporate] mail: sync: storing UID 6 ", WAIT);
    // A power cut in the middle of the sync.
    run.kill();
    let console = run.console();
    let stored = console.matches("mail: sync: storing UID").count();
    assert!(stored < MESSAGES, "the sync finished before the kill:\n{console}");

    let mut run = Machine::xtask(&["run", "--manifest", &path]);
    let opened = run.expect("[corporate] mail: store open: ", BOOT);
    // Everything whose storing had begun before the one in flight is there.
    let line = opened.lines().find(|l| l.contains("mail: store open: ")).unwrap().to_string();
    let messages: usize = line
        .split(", ")
        .find_map(|part| part.strip_suffix(" messages"))
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("no message count in {line:?}"));
    assert!(messages + 1 >= stored, "{stored} were being stored, {messages} came back: {line}");
    run.expect(&format!("[corporate] inbox: {MESSAGES} messages"), WAIT);
    let mark = run.mark();
    run.send("s");
    run.expect_since(mark, " WFI sleeps", WAIT);
    let console = run.console();
    let last = &console[console.rfind(&format!("inbox: {MESSAGES} messages")).unwrap()..];
    for n in 1..=MESSAGES {
        let subject = format!("Bulk message {n:03}");
        assert_eq!(last.matches(&subject).count(), 1, "{subject} not listed exactly once:\n{last}");
    }
    let news = console.matches("mail: sync: storing UID").count();
    assert_eq!(news + messages, MESSAGES, "fetched again what was stored:\n{console}");
    let recovered = console.lines().find(|l| l.contains("mail: store recovered"));
    eprintln!(
        "killed while storing message {stored}; {messages} came back ({line}); {news} fetched after; {recovered:?}"
    );
    run.send("q");
    run.wait(WAIT);
    drop(dovecot);
}

/// Composes a message to alice with `subject` on the running client.
fn compose(run: &mut Machine, subject: &str, body: &str) {
    const KEY: Duration = Duration::from_secs(30);
    run.send("c");
    run.expect("To: ", KEY);
    run.send("alice@mail.test\r");
    run.expect("Subject: ", KEY);
    run.send(&format!("{subject}\r"));
    run.expect("(body; a line with only . ends it)", KEY);
    run.send(&format!("{body}\r"));
    run.expect(&format!("[corporate] {body}\n"), KEY);
    run.send(".\r");
}

/// Messages in alice's Maildir (new and cur).
fn mailbox_count(dovecot: &Dovecot) -> usize {
    std::fs::read_dir(dovecot.maildir.join("new")).unwrap().count()
        + std::fs::read_dir(dovecot.maildir.join("cur")).unwrap().count()
}

#[test]
fn a_send_cut_off_by_a_power_cut_is_settled_by_its_message_id_and_sent_exactly_once() {
    const WAIT: Duration = Duration::from_secs(120);
    let dir = test_dir("mail-run-cut");
    let dovecot = Dovecot::start(&dir);
    let smtp_port = TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let postfix = Postfix::start(&dir, &dovecot, smtp_port);
    let initrd = provision_file(&dir, dovecot.port, smtp_port, 30);

    // The power goes after the message's end went out: the server has it,
    // the store says only "sending".
    let path = mail_manifest_with("mail-run-cut", "mail.run mail.power-cut=after-end", &initrd);
    let mut run = Machine::xtask(&["run", "--manifest", &path, "--new-disk"]);
    run.expect("[corporate] inbox: 0 messages", BOOT);
    compose(&mut run, "Cut after the end", "The server has this one.");
    run.expect("[corporate] mail: power cut (AfterEnd, mail.power-cut); powering off", WAIT);
    run.wait(WAIT);
    wait_for_mail(&dovecot, 1);
    // After the reboot the client finds it on the server and does not send it again.
    let path = mail_manifest_with("mail-run-cut", "mail.run", &initrd);
    let mut run = Machine::xtask(&["run", "--manifest", &path]);
    run.expect("[corporate] mail: store open: ", BOOT);
    run.expect("[corporate] mail: send: outbox entry 1 was cut off mid-send; <", WAIT);
    run.expect(" is found on the server", WAIT);
    run.expect("[corporate] mail: send: outbox entry 1 marked sent; not sent again", WAIT);
    run.expect("[corporate] mail: sync: 1 new messages", WAIT);
    run.forbid("outbox entry 1 sent");

    // Now the power goes just before the message's end: the server never
    // had it; after the reboot it is not found, and sent.
    run.send("q");
    run.wait(WAIT);
    let path = mail_manifest_with("mail-run-cut", "mail.run mail.power-cut=before-end", &initrd);
    let mut run = Machine::xtask(&["run", "--manifest", &path]);
    run.expect("[corporate] inbox: 1 messages", BOOT);
    compose(&mut run, "Cut before the end", "The server never saw this one.");
    run.expect("[corporate] mail: power cut (BeforeEnd, mail.power-cut); powering off", WAIT);
    run.wait(WAIT);
    std::thread::sleep(Duration::from_secs(2));
    assert_eq!(mailbox_count(&dovecot), 1, "a message cut off before its end was delivered");
    let path = mail_manifest_with("mail-run-cut", "mail.run", &initrd);
    let mut run = Machine::xtask(&["run", "--manifest", &path]);
    run.expect(" is not on the server", WAIT);
    run.expect("[corporate] mail: send: outbox entry 2 sent", WAIT);
    run.expect("[corporate] mail: sync: 1 new messages", WAIT);
    std::thread::sleep(Duration::from_secs(2));
    assert_eq!(mailbox_count(&dovecot), 2, "each message exactly once");
    run.forbid("outbox entry 1 sent");
    run.send("q");
    run.wait(WAIT);
    drop(postfix);
}

/// A plaintext "submission server" that offers no STARTTLS: it greets,
/// answers EHLO without STARTTLS, and sends back everything it received
/// until the client hangs up.
fn serve_without_starttls(listener: TcpListener) -> mpsc::Receiver<String> {
    let (sender, receiver) = mpsc::channel();
    std::thread::spawn(move || {
        let Ok((mut stream, _)) = listener.accept() else { return };
        let _ = stream.set_read_timeout(Some(Duration::from_secs(60)));
        let _ = stream.write_all(b"220 plain.test ESMTP\r\n");
        let mut got = Vec::new();
        let mut buffer = [0; 512];
        let mut answered = false;
        while let Ok(n) = std::io::Read::read(&mut stream, &mut buffer) {
            if n == 0 {
                break;
            }
            got.extend_from_slice(&buffer[..n]);
            if !answered && got.ends_with(b"\r\n") {
                let _ = stream.write_all(b"250-plain.test\r\n250-AUTH PLAIN\r\n250 8BITMIME\r\n");
                answered = true;
            }
        }
        let _ = sender.send(String::from_utf8_lossy(&got).into_owned());
    });
    receiver
}

#[test]
fn starttls_on_587_sends_over_tls_and_a_server_without_it_gets_nothing_in_plaintext() {
    const WAIT: Duration = Duration::from_secs(120);
    let dir = test_dir("mail-run-starttls");
    let dovecot = Dovecot::start(&dir);
    let write_provision = |smtp_port: u16| {
        let initrd = provision_file(&dir, dovecot.port, smtp_port, 30);
        let file = dir.join("provision.txt");
        let text = std::fs::read_to_string(&file).unwrap();
        std::fs::write(&file, text.replace("sync_seconds", "smtp_tls = starttls\nsync_seconds"))
            .unwrap();
        initrd
    };

    // A server that offers no STARTTLS: refused after EHLO, nothing else sent.
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let plain_port = listener.local_addr().unwrap().port();
    let received = serve_without_starttls(listener);
    let initrd = write_provision(plain_port);
    let path = mail_manifest_with("mail-run-starttls", "mail.run", &initrd);
    let mut run = Machine::xtask(&["run", "--manifest", &path, "--new-disk"]);
    run.expect(&format!("SMTP 10.0.2.2:{plain_port} with STARTTLS"), BOOT);
    run.expect("[corporate] inbox: 0 messages", BOOT);
    compose(&mut run, "Only over TLS", "Never in plaintext.");
    run.expect(
        "[corporate] mail: send: outbox entry 1 not sent: the server offers no STARTTLS; refused (never plaintext)",
        WAIT,
    );
    run.send("q");
    run.wait(WAIT);
    let got =
        received.recv_timeout(Duration::from_secs(30)).expect("the plaintext server saw a client");
    assert_eq!(got, "EHLO duet-mail\r\n", "more than EHLO went out in plaintext");

    // Postfix on a submission port with STARTTLS: the waiting entry goes.
    let smtp_port = TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let postfix = Postfix::start_with(&dir, &dovecot, smtp_port, true);
    let initrd = write_provision(smtp_port);
    let path = mail_manifest_with("mail-run-starttls", "mail.run", &initrd);
    let mut run = Machine::xtask(&["run", "--manifest", &path]);
    run.expect("[corporate] mail: send: outbox entry 1 sent", WAIT);
    let delivered = wait_for_mail(&dovecot, 1);
    let text = std::fs::read_to_string(&delivered[0]).unwrap();
    assert!(text.contains("Subject: Only over TLS\n"), "{text}");
    run.expect("[corporate] mail: sync: 1 new messages", WAIT);
    run.send("q");
    run.wait(WAIT);
    assert_eq!(mailbox_count(&dovecot), 1);
    let log = std::fs::read_to_string(dir.join("postfix.log")).unwrap_or_default();
    assert!(log.contains("starttls=1"), "Postfix did not see STARTTLS:\n{log}");
    drop(postfix);
}
