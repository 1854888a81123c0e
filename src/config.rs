//! Loading the configuration file and resolving the data directory.

use std::path::{Path, PathBuf};

use anyhow::{Context, bail};
use nvr_core::config::Config;

use crate::cli::DataDirArg;

/// Reads and validates a TOML configuration file; no file means the defaults.
pub fn load(path: Option<&Path>) -> anyhow::Result<Config> {
    let config = match path {
        None => Config::default(),
        Some(p) => {
            let text = std::fs::read_to_string(p)
                .with_context(|| format!("reading configuration file {}", p.display()))?;
            toml::from_str(&text)
                .with_context(|| format!("parsing configuration file {}", p.display()))?
        }
    };
    config.validate()?;
    Ok(config)
}

/// The configuration and data directory of a command: `--data-dir` wins over the file.
pub fn resolve(arg: &DataDirArg) -> anyhow::Result<(Config, PathBuf)> {
    let config = load(arg.config.as_deref())?;
    let dir = match (&arg.data_dir, &config.data_dir) {
        (Some(d), _) | (None, Some(d)) => d.clone(),
        (None, None) => bail!(
            "no data directory: pass --data-dir, set NVR_DATA_DIR, or set data_dir in the config file"
        ),
    };
    Ok((config, dir))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn example_config_parses_and_is_valid() {
        let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("config/nvr.example.toml");
        let c = load(Some(&path)).expect("example config");
        assert!(c.http.listen.ip().is_loopback());
        assert!(!c.cameras.allow_host_names);
    }

    #[test]
    fn unknown_keys_are_refused() {
        let dir = tempfile::tempdir().expect("tempdir");
        let p = dir.path().join("c.toml");
        std::fs::write(&p, "[http]\nlisten = \"127.0.0.1:1\"\nlsiten = 3\n").expect("write");
        let e = load(Some(&p)).expect_err("typo must fail");
        assert!(format!("{e:#}").contains("lsiten"), "{e:#}");
    }
}
