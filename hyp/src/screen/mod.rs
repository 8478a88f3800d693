//! The phone's screen as Duet owns it: what it shows (`compose`: the
//! trusted indicator, the persona in front, the lock screen) and where
//! touch and key input goes (`route`). Plain logic, tested on the host;
//! `drivers::display` is the board's panel and input, `vm::screen` the
//! glue that runs this on the board.

pub mod compose;
