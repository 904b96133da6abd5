//! shim-ctl (skeleton; filled in by its issue).
fn main() {}
