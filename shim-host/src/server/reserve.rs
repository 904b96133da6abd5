//! File descriptors held back for the day the process runs out: the classic spare-fd trick, so
//! one more client (containerd's Kill, State, Wait) can still be accepted and served.
//!
//! The reserve holds `SIZE` fds of /dev/null. When accept fails for lack of fds the loop gives
//! them all back, accepts one client with one of them and leaves the rest to that client's
//! handlers (a runc call needs a few pipes). It takes them again only when `SIZE` + `HEADROOM`
//! are free, so it never takes back the last fds a handler needs.

use std::fs::File;
use std::os::fd::OwnedFd;

/// Fds held back: the connection's own, and room for the runc call its Kill makes.
pub const SIZE: usize = 16;
/// Fds that must be free beyond the reserve before it is taken again.
const HEADROOM: usize = 8;

#[derive(Default)]
pub struct Reserve {
    fds: Vec<OwnedFd>,
}

impl Reserve {
    /// A full reserve if the fds are there (else an empty one, to fill later).
    pub fn new() -> Reserve {
        let mut r = Reserve::default();
        r.fill(0);
        r
    }

    pub fn is_full(&self) -> bool {
        self.fds.len() == SIZE
    }

    /// Give every fd back (for accept, and the accepted client's handlers).
    pub fn release(&mut self) {
        self.fds.clear();
    }

    /// Take the reserve again if `SIZE` fds and `HEADROOM` more are free; all or nothing. True if
    /// the reserve is full.
    pub fn refill(&mut self) -> bool {
        self.fill(HEADROOM)
    }

    /// Take back fds just released and not used (no client was waiting): no headroom asked.
    pub fn take_back(&mut self) -> bool {
        self.fill(0)
    }

    fn fill(&mut self, headroom: usize) -> bool {
        if self.is_full() {
            return true;
        }
        let mut taken = Vec::with_capacity(SIZE + headroom);
        while taken.len() < SIZE + headroom {
            match File::open("/dev/null") {
                Ok(f) => taken.push(OwnedFd::from(f)),
                Err(_) => return false, // all or nothing: `taken` closes as it drops
            }
        }
        taken.truncate(SIZE);
        self.fds = taken;
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_released_reserve_is_taken_again_whole() {
        let mut r = Reserve::new();
        assert!(r.is_full());
        r.release();
        assert!(r.fds.is_empty());
        assert!(r.refill());
        assert_eq!(r.fds.len(), SIZE);
    }
}
