//! The client configuration, `/etc/vouch/client.toml`: which nodes to ask,
//! the trust policy, what to do with packages nobody vouches for, and where
//! answers are cached. Every command that needs a policy or nodes reads it
//! when they are not given on the command line.
//!
//! Which file: `--config FILE`, else `$VOUCH_CONFIG`, else (when not root)
//! `$XDG_CONFIG_HOME/vouch/client.toml` (`~/.config/...`) if it exists,
//! else `/etc/vouch/client.toml`.

use std::path::{Path, PathBuf};

use anyhow::{Context as _, Result, bail};
use serde::{Deserialize, Serialize};
use vouch_attest::{Policy, read_public_key};

/// The system-wide file.
pub(crate) const SYSTEM_FILE: &str = "/etc/vouch/client.toml";

/// Largest configuration file read.
const MAX_CONFIG: u64 = 1 << 20;

/// A documented example with every key and its default.
pub(crate) const EXAMPLE: &str = r#"# /etc/vouch/client.toml: what `vouch` asks and whom it trusts.

# The nodes to ask (base URLs). Every one is asked in parallel; none is
# trusted: each envelope is verified here.
nodes = ["http://127.0.0.1:8484"]

# Seconds to wait for each node.
#timeout_secs = 10

# A package no configured rebuilder vouches for (status UNKNOWN):
#   "deny"  refuse it (the pacman and apt hooks abort)
#   "warn"  say so and go on
#   "allow" go on quietly
#on_unknown = "deny"

# Where answers (signed envelopes, verified again on every use) are kept for
# when no node answers. Default: /var/cache/vouch for root,
# $XDG_CACHE_HOME/vouch otherwise.
#cache_dir = "/var/cache/vouch"

# The trust policy, one of:
#  - a policy file (see `vouch policy check`):
#policy_file = "/etc/vouch/policy.toml"
#  - a directory of public key files (NAME.pub, as `vouch keygen` writes
#    them; each is a signer and its own operator) and a threshold:
#keyring = "/etc/vouch/keys.d"
#threshold = 2
#  - or the policy itself, inline:
#[policy]
#threshold = 2
#[[policy.signer]]
#name = "rebuilder-a"
#operator = "a.example"
#key = "ed25519:..."
"#;

/// What to do with an UNKNOWN package.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub(crate) enum OnUnknown {
    /// Refuse it.
    #[default]
    Deny,
    /// Say so, go on.
    Warn,
    /// Go on.
    Allow,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct File {
    #[serde(default)]
    nodes: Vec<String>,
    #[serde(default = "default_timeout")]
    timeout_secs: u64,
    #[serde(default)]
    on_unknown: OnUnknown,
    cache_dir: Option<PathBuf>,
    policy_file: Option<PathBuf>,
    keyring: Option<PathBuf>,
    threshold: Option<usize>,
    policy: Option<toml::Spanned<toml::Table>>,
}

fn default_timeout() -> u64 {
    10
}

/// A loaded, validated configuration.
#[derive(Debug)]
pub(crate) struct ClientConfig {
    /// The file it came from.
    pub(crate) path: PathBuf,
    pub(crate) nodes: Vec<String>,
    pub(crate) timeout_secs: u64,
    pub(crate) on_unknown: OnUnknown,
    pub(crate) cache_dir: PathBuf,
    pub(crate) policy: Policy,
    /// Where the policy came from, for people.
    pub(crate) policy_source: String,
}

/// The file to read: `explicit` (from `--config` or `VOUCH_CONFIG`), else
/// the user's, else the system's.
pub(crate) fn path(explicit: Option<&Path>) -> PathBuf {
    if let Some(p) = explicit {
        return p.to_path_buf();
    }
    if !is_root()
        && let Some(dir) = std::env::var_os("XDG_CONFIG_HOME")
            .map(PathBuf::from)
            .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".config")))
    {
        let user = dir.join("vouch/client.toml");
        if user.exists() {
            return user;
        }
    }
    PathBuf::from(SYSTEM_FILE)
}

fn is_root() -> bool {
    use std::os::unix::fs::MetadataExt as _;
    std::fs::metadata("/proc/self").is_ok_and(|m| m.uid() == 0)
}

fn default_cache() -> PathBuf {
    if is_root() {
        return PathBuf::from("/var/cache/vouch");
    }
    std::env::var_os("XDG_CACHE_HOME")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".cache")))
        .unwrap_or_else(std::env::temp_dir)
        .join("vouch")
}

/// `FILE:LINE:COL` of byte `at` in `text`.
fn place(path: &Path, text: &str, at: usize) -> String {
    let before = &text[..at.min(text.len())];
    let line = before.matches('\n').count() + 1;
    let col = before.len() - before.rfind('\n').map_or(0, |i| i + 1) + 1;
    format!("{}:{line}:{col}", path.display())
}

/// Reads and validates the configuration at `path`.
pub(crate) fn load(path: &Path) -> Result<ClientConfig> {
    let bytes = crate::output::read_limited(path, MAX_CONFIG).with_context(|| {
        format!(
            "no client configuration at {} (write one: `vouch config example > {}`; or give \
             --policy and --node)",
            path.display(),
            path.display()
        )
    })?;
    let text =
        String::from_utf8(bytes).with_context(|| format!("{}: not UTF-8", path.display()))?;
    let file: File = toml::from_str(&text).map_err(|e| {
        let at = e.span().map_or(0, |s| s.start);
        anyhow::anyhow!("{}: {}", place(path, &text, at), e.message())
    })?;
    let whole = |key: &str| -> String {
        let at = text
            .lines()
            .scan(0usize, |off, l| {
                let start = *off;
                *off += l.len() + 1;
                Some((start, l))
            })
            .find(|(_, l)| {
                let t = l.trim_start();
                t.starts_with(key) || t.starts_with(&format!("[{key}"))
            })
            .map_or(0, |(s, _)| s);
        place(path, &text, at)
    };
    for n in &file.nodes {
        let ok = n.starts_with("http://") || n.starts_with("https://");
        if !ok {
            bail!("{}: nodes: `{n}` is not an http(s) URL", whole("nodes"));
        }
    }
    let sources = [
        file.policy_file.is_some(),
        file.keyring.is_some(),
        file.policy.is_some(),
    ]
    .iter()
    .filter(|x| **x)
    .count();
    if sources > 1 {
        bail!(
            "{}: give one of policy_file, keyring (with threshold) or [policy], not several",
            place(path, &text, 0)
        );
    }
    if file.threshold.is_some() && file.keyring.is_none() {
        bail!("{}: threshold goes with keyring", whole("threshold"));
    }
    let (policy, policy_source) = if let Some(p) = &file.policy_file {
        let p = relative(path, p);
        (
            crate::cmd::policy::load(&p).with_context(|| whole("policy_file"))?,
            p.display().to_string(),
        )
    } else if let Some(dir) = &file.keyring {
        let dir = relative(path, dir);
        let Some(threshold) = file.threshold else {
            bail!("{}: keyring needs threshold", whole("keyring"));
        };
        (
            keyring_policy(&dir, threshold).with_context(|| whole("keyring"))?,
            format!("keyring {}", dir.display()),
        )
    } else if let Some(table) = &file.policy {
        let inline = toml::to_string(table.get_ref()).context("the inline policy")?;
        let policy = Policy::from_toml(&inline).map_err(|e| {
            anyhow::anyhow!("{}: [policy]: {e}", place(path, &text, table.span().start))
        })?;
        (policy, "inline [policy]".to_string())
    } else {
        bail!(
            "{}: no policy: set policy_file, keyring and threshold, or [policy]",
            path.display()
        );
    };
    Ok(ClientConfig {
        path: path.to_path_buf(),
        nodes: file.nodes,
        timeout_secs: file.timeout_secs.max(1),
        on_unknown: file.on_unknown,
        cache_dir: file
            .cache_dir
            .map(|c| relative(path, &c))
            .unwrap_or_else(default_cache),
        policy,
        policy_source,
    })
}

/// What a command needs, from its own flags first and the configuration
/// for the rest.
pub(crate) struct Settings {
    pub(crate) policy: Policy,
    pub(crate) nodes: Vec<String>,
    pub(crate) timeout_secs: u64,
    pub(crate) on_unknown: OnUnknown,
    pub(crate) cache_dir: PathBuf,
}

/// The flags a command was given, completed from the configuration (read
/// only when something is missing).
pub(crate) fn settings(
    config: Option<&Path>,
    policy: Option<&Path>,
    nodes: &[String],
    timeout: Option<u64>,
    want_nodes: bool,
) -> Result<Settings> {
    let explicit_policy = match policy {
        Some(p) => Some(crate::cmd::policy::load(p)?),
        None => None,
    };
    let need_config =
        explicit_policy.is_none() || (want_nodes && nodes.is_empty()) || config.is_some();
    let loaded = if need_config {
        Some(load(&path(config))?)
    } else {
        None
    };
    let (file_policy, file_nodes, file_timeout, on_unknown, cache_dir) = match loaded {
        Some(c) => (
            Some(c.policy),
            c.nodes,
            c.timeout_secs,
            c.on_unknown,
            c.cache_dir,
        ),
        None => (
            None,
            Vec::new(),
            default_timeout(),
            OnUnknown::Deny,
            default_cache(),
        ),
    };
    let policy = match explicit_policy.or(file_policy) {
        Some(p) => p,
        None => bail!("no policy: give --policy or set one in the client configuration"),
    };
    Ok(Settings {
        policy,
        nodes: if nodes.is_empty() {
            file_nodes
        } else {
            nodes.to_vec()
        },
        timeout_secs: timeout.unwrap_or(file_timeout).max(1),
        on_unknown,
        cache_dir,
    })
}

/// `p` relative to the configuration file's directory.
fn relative(config: &Path, p: &Path) -> PathBuf {
    if p.is_absolute() {
        p.to_path_buf()
    } else {
        config.parent().unwrap_or(Path::new(".")).join(p)
    }
}

/// A policy of every `NAME.pub` in `dir`, each its own operator.
fn keyring_policy(dir: &Path, threshold: usize) -> Result<Policy> {
    let mut entries: Vec<PathBuf> = std::fs::read_dir(dir)
        .with_context(|| format!("keyring {}", dir.display()))?
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|x| x == "pub"))
        .collect();
    entries.sort();
    let mut text = format!("threshold = {threshold}\n");
    for p in entries {
        let key = read_public_key(&p).with_context(|| format!("{}", p.display()))?;
        let name = p
            .file_stem()
            .and_then(|s| s.to_str())
            .unwrap_or("key")
            .to_string();
        text += &format!(
            "[[signer]]\nname = {name:?}\noperator = {name:?}\nkey = {:?}\n",
            key.to_text()
        );
    }
    Policy::from_toml(&text).map_err(|e| anyhow::anyhow!("{e}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mistakes_name_file_line_and_column() {
        let t = tempfile::tempdir().unwrap();
        let p = t.path().join("client.toml");
        std::fs::write(&p, "nodes = [\"http://a\"]\non_unknown = \"maybe\"\n").unwrap();
        let e = load(&p).unwrap_err().to_string();
        assert!(e.starts_with(&format!("{}:2:", p.display())), "{e}");
        std::fs::write(
            &p,
            "nodes = [\"ftp://a\"]\nthreshold = 1\nkeyring = \"k\"\n",
        )
        .unwrap();
        let e = load(&p).unwrap_err().to_string();
        assert!(e.contains(":1:1: nodes: `ftp://a`"), "{e}");
        std::fs::write(&p, "nodes = []\n\n[policy]\nthreshold = 0\n").unwrap();
        let e = load(&p).unwrap_err().to_string();
        assert!(e.contains(":3:"), "{e}");
        std::fs::write(&p, "nodes = []\n").unwrap();
        assert!(load(&p).unwrap_err().to_string().contains("no policy"));
    }

    #[test]
    fn the_example_is_valid_once_a_policy_is_given() {
        let t = tempfile::tempdir().unwrap();
        let keys = t.path().join("keys.d");
        std::fs::create_dir(&keys).unwrap();
        for name in ["a", "b"] {
            let k = vouch_attest::SecretKey::from_seed(&[name.as_bytes()[0]; 32]).public_key();
            vouch_attest::write_public_key(&keys.join(format!("{name}.pub")), &k).unwrap();
        }
        let p = t.path().join("client.toml");
        let text = EXAMPLE
            .replace("#keyring = \"/etc/vouch/keys.d\"", "keyring = \"keys.d\"")
            .replacen("#threshold = 2", "threshold = 2", 1);
        std::fs::write(&p, text).unwrap();
        let c = load(&p).unwrap();
        assert_eq!(c.policy.threshold(), 2);
        assert_eq!(c.policy.configured(), 2);
        assert_eq!(c.on_unknown, OnUnknown::Deny);
        assert_eq!(c.timeout_secs, 10);
        assert_eq!(c.nodes, vec!["http://127.0.0.1:8484".to_string()]);
    }
}
