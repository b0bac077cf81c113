//! Numbers as people read them: "4,000,000", "5.1 ms", "3.4 MB". Shared by
//! the live view and the headless commands, so both print a figure the same
//! way.

/// "4,000,000"
pub fn thousands(n: u64) -> String {
    let digits = n.to_string();
    let mut out = String::new();
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

/// A duration in seconds as a person says it: "2.50 s", "5.1 ms", "62 µs".
pub fn duration_label(seconds: f64) -> String {
    if seconds >= 1.0 {
        format!("{seconds:.2} s")
    } else if seconds >= 1e-3 {
        let ms = seconds * 1e3;
        if (ms - ms.round()).abs() < 1e-9 { format!("{ms:.0} ms") } else { format!("{ms:.1} ms") }
    } else {
        format!("{:.0} µs", seconds * 1e6)
    }
}

/// A span of time in nanoseconds, whole seconds without decimals: "250 ms", "1 s".
pub fn span_label(ns: u64) -> String {
    if ns >= 1_000_000_000 && ns.is_multiple_of(1_000_000_000) {
        format!("{} s", ns / 1_000_000_000)
    } else {
        duration_label(ns as f64 / 1e9)
    }
}

/// Memory in KiB: "3.4 MB", "1.2 GB".
pub fn memory_label(kb: u64) -> String {
    if kb >= 1024 * 1024 {
        format!("{:.1} GB", kb as f64 / 1_048_576.0)
    } else {
        format!("{:.1} MB", kb as f64 / 1024.0)
    }
}

/// `text` cut to `width` characters, with an ellipsis when cut.
pub fn fit(text: &str, width: usize) -> String {
    if text.chars().count() <= width {
        return text.to_owned();
    }
    let mut out: String = text.chars().take(width.saturating_sub(1)).collect();
    out.push('…');
    out
}

/// "1 worker", "2 workers".
pub fn plural(n: u64, one: &str, many: &str) -> String {
    format!("{n} {}", if n == 1 { one } else { many })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_read_well() {
        assert_eq!(thousands(4_000_000), "4,000,000");
        assert_eq!(thousands(999), "999");
        assert_eq!(duration_label(0.005), "5 ms");
        assert_eq!(duration_label(0.0051), "5.1 ms");
        assert_eq!(duration_label(2.5), "2.50 s");
        assert_eq!(duration_label(0.000_062), "62 µs");
        assert_eq!(span_label(2_000_000_000), "2 s");
        assert_eq!(span_label(250_000_000), "250 ms");
        assert_eq!(fit("threading", 5), "thre…");
    }
}
