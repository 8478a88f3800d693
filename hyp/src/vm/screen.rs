//! The screen on the board: the compositor (`screen::compose`) over the
//! board's panel, the router (`screen::route`) over its input devices, and
//! what their decisions do to the VMs (input delivered, the scene changed,
//! the persona in front shown). Bare metal only.
//!
//! Locks: a VM's display device (held around its sink's calls and around
//! `with_scanout`) is always taken before [`DISPLAY`], never after, and
//! nothing holds [`INPUT`] while it delivers, shows or changes the scene.
//! A board without a panel has no screen: no lock screen, and the boot
//! persona stays in front as before.

use super::instance::Vm;
use super::run::Cpus;
use super::virtio::{push_input, with_scanout, InputKind};
use crate::arch::aarch64::cpu;
use crate::drivers::display::{InputRole, InputSource, Panel};
use crate::personas::PersonaPackage;
use crate::println;
use crate::sched::power::{Clock, Scene, SCENE};
use crate::screen::compose::{Compositor, Look, Pixels};
use crate::screen::deadline::SharedDeadline;
use crate::screen::layout::Area;
use crate::screen::route::{Device, Out, Router};
use crate::vdev::virtio::backend::{DisplaySink, Frame, Rect};
use alloc::boxed::Box;
use alloc::vec::Vec;
use core::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use spin::{Mutex, Once};

/// Each persona's display when the board has no screen: a phone's.
const NO_SCREEN_SIZE: (u32, u32) = (720, 1232);
/// No persona in front.
const NOBODY: usize = usize::MAX;

struct Display {
    compositor: Compositor,
    panel: Box<dyn Panel>,
}

impl Display {
    /// Draws with the compositor into the panel and flushes what changed;
    /// returns the counter when the drawing was done (before the flush).
    fn draw(&mut self, draw: impl FnOnce(&mut Compositor, &mut Pixels) -> Option<Rect>) -> u64 {
        let (width, height) = self.panel.size();
        let mut pixels = Pixels { pixels: self.panel.framebuffer(), width, height };
        let changed = draw(&mut self.compositor, &mut pixels);
        let drawn = cpu::counter();
        if let Some(rect) = changed {
            self.panel.flush(rect);
        }
        drawn
    }
}

struct Inputs {
    router: Router,
    devices: Vec<(Box<dyn InputSource>, u32)>,
}

static DISPLAY: Once<Mutex<Display>> = Once::new();
static INPUT: Once<Mutex<Inputs>> = Once::new();
/// The persona whose flushes reach the screen ([`NOBODY`] while locked):
/// a background persona's flush returns on this load, copying nothing.
static FRONT: AtomicUsize = AtomicUsize::new(NOBODY);

/// Switch latency, microseconds: the last, the longest, how many.
static SWITCH_LAST_US: AtomicU64 = AtomicU64::new(0);
static SWITCH_MAX_US: AtomicU64 = AtomicU64::new(0);
static SWITCHES: AtomicU64 = AtomicU64::new(0);

/// The router's next deadline, for [`deadline`], which the CPU loop calls
/// and which must not wait for [`INPUT`] (see [`publish`]).
static IDLE_DEADLINE: SharedDeadline = SharedDeadline::none();

/// Takes the board's panel and input devices (started by the drivers) and
/// sets up the compositor and the router for `package`'s personas.
pub fn start(package: &PersonaPackage) {
    let Some(panel) = crate::drivers::virtio::take_panel() else {
        println!("duet: screen: the board has no screen Duet drives; no lock screen");
        return;
    };
    let size = panel.size();
    let looks = package.vms().iter().map(|vm| Look { name: vm.name, colour: vm.colour }).collect();
    DISPLAY.call_once(|| {
        Mutex::new(Display { compositor: Compositor::new(size.0, size.1, looks), panel })
    });
    let devices = crate::drivers::virtio::take_inputs();
    let axes = devices.iter().find_map(|(device, _)| match device.role() {
        InputRole::Touch { x_max, y_max } => Some((x_max, y_max)),
        InputRole::Keyboard => None,
    });
    let idle_s = package.lock_after_idle_seconds();
    let idle_us = (idle_s > 0).then(|| u64::from(idle_s) * 1_000_000);
    let personas = package.vms().len();
    let router = Router::new(
        size,
        axes.unwrap_or((0x7fff, 0x7fff)),
        personas,
        package.foreground(),
        idle_us,
    );
    publish(&router);
    INPUT.call_once(|| Mutex::new(Inputs { router, devices }));
}

/// The size of every persona's display: the screen less the strip.
pub fn display_size() -> (u32, u32) {
    match DISPLAY.get() {
        Some(display) => display.lock().compositor.persona_size(),
        None => NO_SCREEN_SIZE,
    }
}

/// Where VM `index`'s display goes: to the screen while it is in front.
pub fn sink(index: usize) -> Box<dyn DisplaySink> {
    Box::new(Sink { persona: index })
}

/// Once the VMs run: the lock screen, and no persona in front.
pub fn boot(vms: &[Vm], cpus: &dyn Cpus) {
    if DISPLAY.get().is_none() {
        return;
    }
    perform(Vec::from([Out::Lock]), 0, vms, cpus);
}

/// Whether `intid` is one of the input devices' interrupts.
pub fn owns_interrupt(intid: u32) -> bool {
    INPUT.get().is_some_and(|input| input.lock().devices.iter().any(|&(_, i)| i == intid))
}

/// Input device `intid` interrupted: route every event it has.
pub fn input_interrupt(intid: u32, vms: &[Vm], cpus: &dyn Cpus) {
    let Some(input) = INPUT.get() else { return };
    loop {
        let now = cpu::counter();
        let mut guard = input.lock();
        let Inputs { router, devices } = &mut *guard;
        let Some((device, _)) = devices.iter_mut().find(|(_, i)| *i == intid) else { return };
        device.acknowledge();
        let Some(event) = device.next_event() else { return };
        let out = match device.role() {
            InputRole::Keyboard => router.key(event, micros(now)),
            InputRole::Touch { .. } => router.touch(event, micros(now)),
        };
        publish(router);
        drop(guard);
        perform(out, now, vms, cpus);
    }
}

/// The console's screen key (`Ctrl-] o`): with a screen, locks it or
/// unlocks it into the persona used last; returns false without a screen.
pub fn toggle(vms: &[Vm], cpus: &dyn Cpus) -> bool {
    let Some(input) = INPUT.get() else { return false };
    let now = cpu::counter();
    let out = change(input, |router| router.toggle(micros(now)));
    perform(out, now, vms, cpus);
    true
}

/// Duet's timer fired on this CPU: the idle timeout may be due.
pub fn tick(vms: &[Vm], cpus: &dyn Cpus) {
    let Some(input) = INPUT.get() else { return };
    let now = cpu::counter();
    let out = change(input, |router| router.tick(micros(now)));
    perform(out, now, vms, cpus);
}

/// When the boot CPU's timer must fire for the idle timeout, as a counter
/// value. Lock-free: the CPU loop asks every turn, and a turn that found
/// the router busy would otherwise arm nothing for the idle lock.
pub fn deadline() -> Option<u64> {
    if cpu::id() != 0 {
        return None;
    }
    Some(clock().ticks_from_micros(IDLE_DEADLINE.get()?))
}

/// Changes the router under [`INPUT`]'s lock, and publishes its deadline.
fn change(input: &Mutex<Inputs>, change: impl FnOnce(&mut Router) -> Vec<Out>) -> Vec<Out> {
    let mut input = input.lock();
    let out = change(&mut input.router);
    publish(&input.router);
    out
}

/// Publishes the router's deadline for [`deadline`] after a change. Called
/// with [`INPUT`] held (or before it exists), so that publications land in
/// the order of the changes.
fn publish(router: &Router) {
    IDLE_DEADLINE.set(router.next_deadline_us());
}

/// Prints the switch latency, for `print_counters`.
pub fn print_counters() {
    if DISPLAY.get().is_none() {
        return;
    }
    println!(
        "duet: screen: {} switches, latency last {} us, max {} us",
        SWITCHES.load(Ordering::Relaxed),
        SWITCH_LAST_US.load(Ordering::Relaxed),
        SWITCH_MAX_US.load(Ordering::Relaxed)
    );
}

/// Does what the router decided; `at` is the counter at the event.
fn perform(out: Vec<Out>, at: u64, vms: &[Vm], cpus: &dyn Cpus) {
    for out in out {
        match out {
            Out::Deliver { persona, device, events } => {
                let kind = match device {
                    Device::Keyboard => InputKind::Keyboard,
                    Device::Touch => InputKind::Touch,
                };
                if let Some(vm) = vms.get(persona) {
                    push_input(vm, kind, &events, cpus);
                }
            }
            Out::Lock => lock(),
            Out::Unlock { persona } => unlock(persona, at, vms),
        }
    }
}

fn lock() {
    FRONT.store(NOBODY, Ordering::Release);
    let (areas, selected) = match INPUT.get() {
        Some(input) => {
            let input = input.lock();
            (input.router.areas().to_vec(), Some(input.router.selected()))
        }
        None => (Vec::new(), None),
    };
    let cards: Vec<Rect> = areas.iter().map(|a: &Area| rect(*a)).collect();
    if let Some(display) = DISPLAY.get() {
        display.lock().draw(|c, pixels| Some(c.show_lock(pixels, &cards, selected)));
    }
    let last = SCENE.load().foreground;
    println!("duet: screen: locked");
    super::system::change_scene(Scene { foreground: last, screen_on: false });
}

fn unlock(persona: usize, at: u64, vms: &[Vm]) {
    let Some(vm) = vms.get(persona) else { return };
    let Some(display) = DISPLAY.get() else { return };
    FRONT.store(persona, Ordering::Release);
    // The VM's display lock, then the screen's: the order a flush takes.
    // What its scanout holds now is its first frame (black if it never
    // set one): no redraw is asked of it. The screen first, then the
    // console and the scheduler, so neither delays what the user sees.
    let drawing = cpu::counter();
    let drawn = with_scanout(vm, |frame| {
        display.lock().draw(|c, pixels| Some(c.show_persona(pixels, persona, frame)))
    });
    let shown = cpu::counter();
    let us = micros(shown.wrapping_sub(at));
    SWITCH_LAST_US.store(us, Ordering::Relaxed);
    SWITCH_MAX_US.fetch_max(us, Ordering::Relaxed);
    SWITCHES.fetch_add(1, Ordering::Relaxed);
    println!("duet: screen: unlocked into vm {}", vm.name);
    println!(
        "duet: screen: switch to vm {} took {us} us (drawing {} us, flushing {} us)",
        vm.name,
        micros(drawn.wrapping_sub(drawing)),
        micros(shown.wrapping_sub(drawn))
    );
    super::system::change_scene(Scene { foreground: persona, screen_on: true });
}

/// One VM's display sink.
struct Sink {
    persona: usize,
}

impl DisplaySink for Sink {
    fn flushed(&mut self, frame: &dyn Frame, rect: Rect) {
        if FRONT.load(Ordering::Acquire) != self.persona {
            return;
        }
        let Some(display) = DISPLAY.get() else { return };
        display.lock().draw(|c, pixels| c.flushed(pixels, self.persona, frame, rect));
    }

    fn scanout_off(&mut self) {
        if FRONT.load(Ordering::Acquire) != self.persona {
            return;
        }
        if let Some(display) = DISPLAY.get() {
            display.lock().draw(|c, pixels| c.scanout_off(pixels, self.persona));
        }
    }
}

fn rect(area: Area) -> Rect {
    Rect { x: area.x, y: area.y, width: area.width, height: area.height }
}

fn clock() -> Clock {
    Clock { frequency: cpu::counter_frequency() }
}

/// Counter ticks in microseconds.
fn micros(ticks: u64) -> u64 {
    clock().micros(ticks)
}
