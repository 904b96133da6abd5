//! shim-runc-v1 (skeleton; filled in by its issue).
fn main() {}
