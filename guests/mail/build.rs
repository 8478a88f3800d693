//! Adds the linker script for the bare-metal build only.

fn main() {
    if std::env::var("CARGO_CFG_TARGET_OS").as_deref() == Ok("none") {
        let dir = std::env::var("CARGO_MANIFEST_DIR").expect("cargo sets CARGO_MANIFEST_DIR");
        println!("cargo:rustc-link-arg-bins=-T{dir}/link.ld");
        // The workspace links bare-metal binaries as position-independent
        // (for Duet). The guest runs where it is linked, so have the linker
        // write each relocation's final value in place: no loader needed.
        println!("cargo:rustc-link-arg-bins=--apply-dynamic-relocs");
    }
    println!("cargo:rerun-if-changed=link.ld");
}
