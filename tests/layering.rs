//! The layers hold by test where the compiler cannot hold them: the front ends (`nvr-web`'s
//! handlers and the `nvr` command line) reach the index only through the application layer
//! (`nvr-app`) or `Store`'s typed operations, never through `Store::db()`'s handle to every
//! query, and neither front end links SQLite or reads the disk's free space itself.

use std::path::{Path, PathBuf};

/// Every non-test Rust file under `dir`: test modules (`tests/` directories, `tests.rs`,
/// `*_tests.rs`) may set up state through the index directly.
fn sources(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let mut todo = vec![dir.to_owned()];
    while let Some(d) = todo.pop() {
        for entry in std::fs::read_dir(&d).expect("read_dir") {
            let path = entry.expect("entry").path();
            let name = path.file_name().and_then(|n| n.to_str()).unwrap_or("");
            if path.is_dir() {
                if name != "tests" {
                    todo.push(path);
                }
            } else if name.ends_with(".rs") && name != "tests.rs" && !name.ends_with("_tests.rs") {
                out.push(path);
            }
        }
    }
    out.sort();
    out
}

/// `(file, line number, line)` of every line of the front ends' code containing `needle`.
fn uses(needle: &str) -> Vec<(String, usize, String)> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut found = Vec::new();
    for dir in ["nvr-web/src", "src"] {
        let files = sources(&root.join(dir));
        assert!(!files.is_empty(), "no sources under {dir}");
        for file in files {
            let text = std::fs::read_to_string(&file).expect("read");
            for (i, line) in text.lines().enumerate() {
                if line.contains(needle) && !line.trim_start().starts_with("//") {
                    let rel = file.strip_prefix(root).unwrap_or(&file);
                    found.push((rel.display().to_string(), i + 1, line.trim().to_owned()));
                }
            }
        }
    }
    found
}

#[test]
fn front_ends_never_take_the_index_handle() {
    assert_eq!(
        uses(".db()"),
        vec![],
        "use nvr-app or Store's typed operations"
    );
}

#[test]
fn front_ends_neither_run_sql_nor_measure_the_disk() {
    for needle in ["rusqlite", "statvfs", "prepare_cached"] {
        assert_eq!(uses(needle), vec![], "{needle} belongs below nvr-app");
    }
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    for manifest in ["nvr-web/Cargo.toml", "Cargo.toml"] {
        let text = std::fs::read_to_string(root.join(manifest)).expect("manifest");
        let deps = text
            .split("[dependencies]")
            .nth(1)
            .and_then(|s| s.split("\n[").next())
            .unwrap_or("");
        assert!(
            !deps.lines().any(|l| l.trim_start().starts_with("rusqlite")),
            "{manifest} depends on rusqlite"
        );
    }
}
