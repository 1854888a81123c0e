//! The commands about the recorder's evidence signing key: `nvr key show` and `nvr key rotate`.
//! Arguments and printing only: the rules are in nvr-storage (`signing`, `signing_keys`).

use std::process::ExitCode;

use anyhow::Context;
use nvr_core::Time90k;
use nvr_storage::db::SigningKeyRow;

use crate::cli::KeyCommand;
use crate::commands::open;
use crate::config;

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
