//! shim-core (skeleton; filled in by its issue).
