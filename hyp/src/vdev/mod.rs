//! Virtual devices Duet emulates for guests.
