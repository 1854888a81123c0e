//! The commands about the recorder's evidence signing key: `nvr key show`, `nvr key rotate`,
//! and `nvr verify` (a bundle checked against the keys the verifier pinned). Arguments and
//! printing only: the rules are in nvr-storage (`signing`, `signing_keys`, `export::verify`).

use std::process::ExitCode;

use anyhow::Context;
use nvr_core::Time90k;
use nvr_storage::SigningKeyRow;
use nvr_storage::export::verify::{Verdict, verify_bundle};
use nvr_storage::signing::TrustedKeys;

use crate::cli::{KeyCommand, VerifyArgs};
use crate::commands::open;
use crate::config;

/// Exit status of `nvr verify` for an intact bundle signed by a key nobody pinned.
const EXIT_UNPINNED: u8 = 3;

pub fn key(command: KeyCommand) -> anyhow::Result<ExitCode> {
    match command {
        KeyCommand::Show(a) => {
            let (_, dir) = config::resolve(&a.dir)?;
            let store = open(&dir)?;
            println!("current signing key: {}", store.signing_key().fingerprint());
            println!("keys this recorder has signed with, oldest first:");
            for k in store.signing_key_history()? {
                println!("  {}", history_line(&k));
            }
            Ok(ExitCode::SUCCESS)
        }
        KeyCommand::Rotate(a) => {
            let (_, dir) = config::resolve(&a.dir)?;
            let store = open(&dir)?;
            let r = store
                .rotate_signing_key(&nvr_app::Actor::cli().audit_name())
                .context("rotating the signing key")?;
            println!("retired signing key: {}", history_line(&r.retired));
            println!("current signing key: {}", r.current.fingerprint());
            println!(
                "Bundles exported from now on are signed by the new key: give its fingerprint to \
                 whoever verifies them (nvr verify --expect-key {}).",
                r.current.fingerprint()
            );
            println!(
                "Bundles made before still verify with the old fingerprint, and the recorder \
                 keeps the old public key, so the chain heads it signed still check (nvr check)."
            );
            println!(
                "A running `nvr serve` signs with the new key from its next export or chain head \
                 (within 10 minutes); it needs no restart."
            );
            Ok(ExitCode::SUCCESS)
        }
    }
}

/// One key of the history: fingerprint, and the dates it was in use.
fn history_line(k: &SigningKeyRow) -> String {
    let first = Time90k(k.first_used_90k).to_rfc3339();
    match k.retired_90k {
        None => format!("{}  in use since {first}  (current)", k.fingerprint()),
        Some(r) => format!(
            "{}  in use from {first} to {}",
            k.fingerprint(),
            Time90k(r).to_rfc3339()
        ),
    }
}

/// `nvr verify`: exit 0 authentic, 3 intact but not pinned, 1 invalid.
pub fn verify(a: &VerifyArgs) -> anyhow::Result<ExitCode> {
    let mut pins: TrustedKeys = a.expect_key.iter().copied().collect();
    for file in &a.trusted_keys {
        let text = std::fs::read_to_string(file)
            .with_context(|| format!("reading trusted keys from {}", file.display()))?;
        pins.add_file_text(&file.display().to_string(), &text)?;
    }
    let report = verify_bundle(&a.bundle, &pins);
    for line in &report.passed {
        println!("OK    {line}");
    }
    for f in &report.failures {
        println!("FAIL  {f}");
    }
    let key = report
        .key_fingerprint
        .map_or_else(|| "?".to_owned(), |k| k.to_string());
    println!(
        "recorder {}, key {key} ({})",
        report.recorder_id.as_deref().unwrap_or("?"),
        if report.pinned {
            "pinned"
        } else {
            "not pinned"
        }
    );
    let bundle = a.bundle.display();
    match report.verdict() {
        Verdict::Authentic => {
            println!("VALID: {bundle}: intact, and signed by the pinned key {key}");
            Ok(ExitCode::SUCCESS)
        }
        Verdict::Unpinned => {
            println!(
                "NOT PINNED: {bundle} is intact and its signatures are valid, but its origin is \
                 not established: it is signed by key {key}, which you did not pin, and anyone \
                 can make a recorder and sign a bundle with a key of their own."
            );
            println!(
                "To establish it, ask the recorder's administrator for the recorder's key \
                 fingerprint through a channel you trust (they read it on the recorder's Status \
                 page or with `nvr key show`), compare it character by character with the key \
                 above, and if they match run:"
            );
            println!("    nvr verify --expect-key {key} {bundle}");
            println!("(or list trusted fingerprints in a file, one per line, for --trusted-keys)");
            Ok(ExitCode::from(EXIT_UNPINNED))
        }
        Verdict::Invalid => {
            println!(
                "INVALID: {bundle}: {}",
                report
                    .failures
                    .first()
                    .map_or("nothing checked", String::as_str)
            );
            Ok(ExitCode::from(1))
        }
    }
}
