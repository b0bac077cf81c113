//! Exact GIL hand-overs from uprobes on CPython's `take_gil` and `drop_gil`.

/// The static function that takes the GIL (in `.symtab` only).
pub const TAKE_GIL: &str = "take_gil";
/// The static function that releases it.
pub const DROP_GIL: &str = "drop_gil";
