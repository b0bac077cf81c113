//! The program's shape, checked: every module imports only from the layers
//! below it (the README's "How it works" lists them top to bottom), so data
//! flows one way and no cycle can form.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // a test stops where it fails

use std::path::Path;

/// Top to bottom. A module may use those after it, never those before.
const LAYERS: &[&[&str]] = &[
    &["main"],
    &["commands"],
    &["cli"],
    &["scenario"],
    // Beside each other: neither uses the other.
    &["ui", "recording"],
    &["app"],
    &["monitor"],
    &["experiment"],
    &["cpython"],
    // Reads a running interpreter's GIL from its memory; knows nothing of runs.
    &["gil_sampler"],
    &["worker"],
    &["sim"],
    &["protocol"],
    &["cache", "format", "clock", "children", "signals", "procfs"],
];

fn layer(module: &str) -> usize {
    LAYERS
        .iter()
        .position(|l| l.contains(&module))
        .unwrap_or_else(|| panic!("module {module} is in no layer"))
}

/// The top-level module a file of src/ belongs to.
fn module_of(path: &Path, src: &Path) -> String {
    let rel = path.strip_prefix(src).unwrap();
    let first = rel.components().next().unwrap().as_os_str().to_string_lossy().into_owned();
    first.trim_end_matches(".rs").to_owned()
}

fn files(dir: &Path, out: &mut Vec<std::path::PathBuf>) {
    for entry in std::fs::read_dir(dir).unwrap().flatten() {
        let path = entry.path();
        if path.is_dir() {
            files(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

#[test]
fn every_module_imports_only_from_the_layers_below_it() {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut all = Vec::new();
    files(&src, &mut all);
    let mut wrong = Vec::new();
    for path in all {
        let module = module_of(&path, &src);
        // lib.rs only declares; a `tests.rs` is a module's tests, declared under #[cfg(test)].
        if module == "lib" || path.file_name().is_some_and(|n| n == "tests.rs") {
            continue;
        }
        let text = std::fs::read_to_string(&path).unwrap();
        // Only what the program itself uses: a module's tests may reach anywhere.
        let code = text.split("#[cfg(test)]").next().unwrap_or("");
        let prefix = if module == "main" { "gilscope::" } else { "crate::" };
        for (at, _) in code.match_indices(prefix) {
            let used: String =
                code[at + prefix.len()..].chars().take_while(|c| c.is_alphanumeric() || *c == '_').collect();
            if used != module && layer(&used) <= layer(&module) {
                wrong.push(format!("{}: {module} uses {used}", path.display()));
            }
        }
    }
    assert!(wrong.is_empty(), "imports that go up or sideways:\n{}", wrong.join("\n"));
}
