//! The phone's screen as Duet owns it: the lock screen, the gestures that
//! pick a persona on it, the input that must not leak across a switch, and
//! what the screen shows. Everything here is plain logic, tested on the
//! host; `drivers::display` is the board's panel and input, `vm::screen`
//! the glue that runs this on the board.
//!
//! - `layout`: where things sit on the physical screen (the indicator strip,
//!   each persona's card on the lock screen), shared by drawing and
//!   hit-testing so that they agree.
//! - `gesture`: taps and swipes recognised from raw touch events.
//! - `lock`: the lock screen's state machine (gestures, keys, idle timeout).
//! - `held_keys`: keys held down, so a switch can release them where they
//!   were pressed.
//! - `compose`: what the screen shows (the trusted indicator, the persona
//!   in front clipped to its area, the lock screen).
//! - `route`: where each physical input event goes.
//! - `deadline`: the router's next deadline, readable without its lock.

pub mod compose;
pub mod deadline;
pub mod gesture;
pub mod held_keys;
pub mod layout;
pub mod lock;
pub mod route;
