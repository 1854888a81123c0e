//! The layers hold by test where the compiler cannot hold them. The compiler already keeps the
//! index's handle (`Store::db()`, `Database`) inside `nvr-storage`: every other crate calls
//! `Store`'s typed operations. What it cannot see: the handle tests get through the
//! `test-support` feature (`Store::db_for_tests`) must stay in tests, the feature must stay a
//! dev-dependency, no crate but storage may link SQLite, and the front ends (`nvr-web`'s
//! handlers and the `nvr` command line) go through the application layer (`nvr-app`) or
//! `Store`, never reading the disk's free space themselves. And `nvr-web`'s handlers call the
//! application layer's synchronous operations only on a blocking thread.

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

/// The front ends' source directories.
const FRONT_ENDS: &[&str] = &["nvr-web/src", "src"];

/// Every crate's source directory but storage's.
const ABOVE_STORAGE: &[&str] = &[
    "nvr-core/src",
    "nvr-ingest/src",
    "nvr-media/src",
    "nvr-motion/src",
    "nvr-app/src",
    "nvr-web/src",
    "nvr-testcam/src",
    "src",
];

/// Every manifest but storage's (the workspace's is the `nvr` package's too).
const MANIFESTS_ABOVE_STORAGE: &[&str] = &[
    "Cargo.toml",
    "nvr-core/Cargo.toml",
    "nvr-ingest/Cargo.toml",
    "nvr-media/Cargo.toml",
    "nvr-motion/Cargo.toml",
    "nvr-app/Cargo.toml",
    "nvr-web/Cargo.toml",
    "nvr-testcam/Cargo.toml",
];

/// `(file, line number, line)` of every line of the front ends' code containing `needle`.
fn uses(needle: &str) -> Vec<(String, usize, String)> {
    uses_in(FRONT_ENDS, needle)
}

/// `(file, line number, line)` of every line of the non-test code under `dirs` containing
/// `needle`.
fn uses_in(dirs: &[&str], needle: &str) -> Vec<(String, usize, String)> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut found = Vec::new();
    for dir in dirs {
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
    for needle in ["statvfs", "prepare_cached"] {
        assert_eq!(uses(needle), vec![], "{needle} belongs below nvr-app");
    }
}

/// The `[dependencies]` section of a manifest (not its dev-dependencies).
fn dependencies(manifest: &str) -> String {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let text = std::fs::read_to_string(root.join(manifest)).expect("manifest");
    text.split("\n[dependencies]")
        .nth(1)
        .and_then(|s| s.split("\n[").next())
        .unwrap_or("")
        .to_owned()
}

#[test]
fn only_storage_runs_sql() {
    assert_eq!(
        uses_in(ABOVE_STORAGE, "rusqlite"),
        vec![],
        "SQL belongs in nvr-storage's db/"
    );
    for manifest in MANIFESTS_ABOVE_STORAGE {
        assert!(
            !dependencies(manifest)
                .lines()
                .any(|l| l.trim_start().starts_with("rusqlite")),
            "{manifest} depends on rusqlite"
        );
    }
}

#[test]
fn the_index_handle_for_tests_stays_in_tests() {
    assert_eq!(
        uses_in(ABOVE_STORAGE, "db_for_tests"),
        vec![],
        "use Store's typed operations (db_for_tests is for tests and benchmarks)"
    );
    for manifest in MANIFESTS_ABOVE_STORAGE {
        assert!(
            !dependencies(manifest)
                .lines()
                .any(|l| l.trim_start().starts_with("nvr-storage") && l.contains("test-support")),
            "{manifest} enables nvr-storage's test-support outside its dev-dependencies"
        );
    }
}

/// What a handler may call on `state.app` or `state.store` on its async worker: the async
/// operations (awaited) and the ones that only look at memory or queue (`Store::audit`).
/// Everything else reads or changes the index and goes through `crate::blocking`, whose closure
/// names the state `s` (`s.app.cameras()`), or `spawn_blocking` with a clone.
const IN_MEMORY_CALLS: &[&str] = &[
    ".clone()",
    ".motion_status(",
    ".export_progress(",
    ".session_watch(",
    ".audit(",
];

#[test]
fn web_handlers_call_the_index_only_on_blocking_threads() {
    let offending: Vec<_> = ["state.app.", "state.store."]
        .into_iter()
        .flat_map(|needle| uses_in(&["nvr-web/src"], needle))
        .filter(|(_, _, line)| {
            !line.contains(".await") && !IN_MEMORY_CALLS.iter().any(|c| line.contains(c))
        })
        .collect();
    assert_eq!(
        offending,
        vec![],
        "run it in crate::blocking (an async worker must not wait on SQLite)"
    );
}
