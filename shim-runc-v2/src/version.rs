//! `-v`: the version text, laid out as Go shims print theirs.

/// This crate's version.
pub const VERSION: &str = env!("CARGO_PKG_VERSION");
/// The git commit the binary was built from (`unknown` outside a git checkout).
pub const REVISION: &str = env!("SHIM_REVISION");
/// The compiler that built it (Go shims print their Go version here).
pub const RUSTC: &str = env!("SHIM_RUSTC_VERSION");

/// `<binary>:\n  Version:  V\n  Revision: R\n  Rust version: C\n\n`, as Go's
/// `fmt.Println("  Version: ", v)` and friends lay it out.
pub fn text(binary: &str) -> String {
    format!("{binary}:\n  Version:  {VERSION}\n  Revision: {REVISION}\n  Rust version: {RUSTC}\n\n")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_are_laid_out_as_go_prints_them() {
        let t = text("containerd-shim-rsrunc-v2");
        let lines: Vec<&str> = t.split('\n').collect();
        assert_eq!(lines[0], "containerd-shim-rsrunc-v2:");
        assert_eq!(lines[1], format!("  Version:  {VERSION}"));
        assert!(lines[2].starts_with("  Revision: "));
        assert!(lines[3].starts_with("  Rust version: "));
        assert_eq!(&lines[4..], ["", ""]);
    }
}
