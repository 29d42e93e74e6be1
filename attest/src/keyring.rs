//! The published keyring: one TOML file per rebuilder in `keys/`.
//!
//! ```toml
//! name = "rebuilder-a"
//! operator = "alice"
//! key = "ed25519:<base64>"
//! multiaddrs = ["/dns4/rebuilder-a.example/tcp/4001"]
//! http = "https://rebuilder-a.example"
//! valid_from = 2026-11-01
//! valid_until = 2027-11-01   # optional
//! test_only = false          # optional
//! ```

use std::collections::BTreeMap;
use std::fs;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::dates::{line_col, unix_seconds};
use crate::error::KeyError;
use crate::keys::PublicKey;
use crate::policy::TrustedSigner;

/// Largest keyring file read, in bytes.
const MAX_ENTRY_FILE: u64 = 64 * 1024;

/// One rebuilder of the keyring.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct KeyringEntry {
    /// The file it came from.
    pub path: PathBuf,
    /// Its name.
    pub name: String,
    /// Who runs it.
    pub operator: String,
    /// Its public key.
    pub key: PublicKey,
    /// libp2p multiaddrs to reach it.
    pub multiaddrs: Vec<String>,
    /// Its HTTP API.
    pub http: Option<String>,
    /// From when its verdicts count (unix seconds).
    pub valid_from: Option<u64>,
    /// Until when its verdicts count (unix seconds).
    pub valid_until: Option<u64>,
    /// A test-only key (its secret is public).
    pub test_only: bool,
}

impl KeyringEntry {
    /// The entry as a policy signer.
    pub fn to_trusted_signer(&self) -> TrustedSigner {
        TrustedSigner {
            name: self.name.clone(),
            operator: self.operator.clone(),
            key: self.key,
            valid_from: self.valid_from,
            valid_until: self.valid_until,
        }
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct EntryFile {
    name: toml::Spanned<String>,
    operator: String,
    key: toml::Spanned<String>,
    #[serde(default)]
    multiaddrs: Vec<toml::Spanned<String>>,
    http: Option<toml::Spanned<String>>,
    valid_from: Option<toml::Spanned<toml::value::Datetime>>,
    valid_until: Option<toml::Spanned<toml::value::Datetime>>,
    #[serde(default)]
    test_only: bool,
}

/// Parses one keyring file's text; `path` is used in error messages.
pub fn parse_entry(path: &Path, text: &str) -> Result<KeyringEntry, KeyError> {
    let at = |span: std::ops::Range<usize>, message: String| {
        let (line, column) = line_col(text, span.start);
        KeyError::Keyring {
            path: path.to_path_buf(),
            line,
            column,
            message,
        }
    };
    let file: EntryFile =
        toml::from_str(text).map_err(|e| at(e.span().unwrap_or(0..0), e.message().to_string()))?;
    let key: PublicKey = file
        .key
        .get_ref()
        .parse()
        .map_err(|e| at(file.key.span(), format!("key: {e}")))?;
    if file.name.get_ref().trim().is_empty() {
        return Err(at(file.name.span(), "name is empty".to_string()));
    }
    for m in &file.multiaddrs {
        if !m.get_ref().starts_with('/') {
            return Err(at(
                m.span(),
                format!("`{}` is not a multiaddr", m.get_ref()),
            ));
        }
    }
    if let Some(h) = &file.http
        && !(h.get_ref().starts_with("http://") || h.get_ref().starts_with("https://"))
    {
        return Err(at(
            h.span(),
            format!("`{}` is not an http(s) URL", h.get_ref()),
        ));
    }
    let date = |d: &Option<toml::Spanned<toml::value::Datetime>>| {
        d.as_ref()
            .map(|d| unix_seconds(d.get_ref()).map_err(|e| at(d.span(), e)))
            .transpose()
    };
    let valid_from = date(&file.valid_from)?;
    let valid_until = date(&file.valid_until)?;
    if let (Some(f), Some(u), Some(span)) = (valid_from, valid_until, file.valid_until.as_ref())
        && f > u
    {
        return Err(at(
            span.span(),
            "valid_until is before valid_from".to_string(),
        ));
    }
    Ok(KeyringEntry {
        path: path.to_path_buf(),
        name: file.name.into_inner(),
        operator: file.operator,
        key,
        multiaddrs: file
            .multiaddrs
            .into_iter()
            .map(|m| m.into_inner())
            .collect(),
        http: file.http.map(|h| h.into_inner()),
        valid_from,
        valid_until,
        test_only: file.test_only,
    })
}

/// Reads one keyring file.
pub fn read_entry(path: &Path) -> Result<KeyringEntry, KeyError> {
    let io = |source| KeyError::Io {
        path: path.to_path_buf(),
        source,
    };
    let len = fs::metadata(path).map_err(io)?.len();
    if len > MAX_ENTRY_FILE {
        return Err(KeyError::Format {
            path: path.to_path_buf(),
            message: format!("{len} bytes is too large for a keyring file"),
        });
    }
    let text = fs::read_to_string(path).map_err(io)?;
    parse_entry(path, &text)
}

/// Reads every `*.toml` directly in `dir` (not in subdirectories), sorted by
/// file name, and refuses two entries with the same key or name.
pub fn read_keyring(dir: &Path) -> Result<Vec<KeyringEntry>, KeyError> {
    let io = |source| KeyError::Io {
        path: dir.to_path_buf(),
        source,
    };
    let mut paths: Vec<PathBuf> = fs::read_dir(dir)
        .map_err(io)?
        .filter_map(Result::ok)
        .map(|e| e.path())
        .filter(|p| p.is_file() && p.extension().is_some_and(|x| x == "toml"))
        .collect();
    paths.sort();
    let mut entries = Vec::with_capacity(paths.len());
    let mut keys: BTreeMap<PublicKey, PathBuf> = BTreeMap::new();
    let mut names: BTreeMap<String, PathBuf> = BTreeMap::new();
    for path in paths {
        let entry = read_entry(&path)?;
        if let Some(other) = keys.insert(entry.key, path.clone()) {
            return Err(KeyError::Format {
                path,
                message: format!("same key as {}", other.display()),
            });
        }
        if let Some(other) = names.insert(entry.name.clone(), path.clone()) {
            return Err(KeyError::Format {
                path,
                message: format!("same name as {}", other.display()),
            });
        }
        entries.push(entry);
    }
    Ok(entries)
}

#[cfg(test)]
mod tests {
    use super::*;

    const KEY: &str = "ed25519:A6EHv/POEL4dcN0Y50vAmWfk1jCbpQ1fHdyGZBJVMbg=";

    #[test]
    fn parses_an_entry() {
        let text = format!(
            "name = \"a\"\noperator = \"alice\"\nkey = \"{KEY}\"\nmultiaddrs = [\"/ip4/127.0.0.1/tcp/4001\"]\nhttp = \"http://127.0.0.1:8484\"\nvalid_from = 2026-11-01\n"
        );
        let e = parse_entry(Path::new("a.toml"), &text).unwrap();
        assert_eq!(e.name, "a");
        assert_eq!(e.valid_from, Some(1_793_491_200));
        assert!(!e.test_only);
    }

    #[test]
    fn mistakes_carry_file_and_line() {
        let text = "name = \"a\"\noperator = \"alice\"\nkey = \"ed25519:nope\"\n";
        let err = parse_entry(Path::new("keys/a.toml"), text)
            .unwrap_err()
            .to_string();
        assert!(err.starts_with("keys/a.toml:3:"), "{err}");
        let text = format!("name = \"a\"\noperator = \"alice\"\nkey = \"{KEY}\"\nhttp = 5\n");
        let err = parse_entry(Path::new("keys/a.toml"), &text)
            .unwrap_err()
            .to_string();
        assert!(err.starts_with("keys/a.toml:4:"), "{err}");
        let text = format!("name = \"a\"\noperator = \"alice\"\nkey = \"{KEY}\"\ncolour = 1\n");
        let err = parse_entry(Path::new("k.toml"), &text)
            .unwrap_err()
            .to_string();
        assert!(
            err.starts_with("k.toml:4:") && err.contains("colour"),
            "{err}"
        );
    }
}
