//! reaper (skeleton; filled in by its issue).
