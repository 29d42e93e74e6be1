//! The data directory: key, admin token, config, store.
//!
//! ```text
//! DATA_DIR/            mode 0700
//!   node.key           the node's ed25519 signing key, mode 0600
//!   node.key.pub       its public key
//!   admin-token        bearer token for POSTing verdicts, mode 0600
//!   vouchd.toml        configuration (commented defaults)
//!   store/             the store: segments/, evidence/, index/ (spec/store.md)
//!   vouchd.http        the address the HTTP API is bound to, while running
//!   vouchd.p2p         the swarm's multiaddrs, while running
//! ```

use std::fs;
use std::io::Write as _;
use std::os::unix::fs::{DirBuilderExt as _, OpenOptionsExt as _, PermissionsExt as _};
use std::path::{Path, PathBuf};

use anyhow::{Context as _, Result, bail};
use vouch_attest::{
    SecretKey, public_key_path, read_secret_key, write_public_key, write_secret_key,
};

use crate::config;

/// Paths inside a data directory.
#[derive(Debug, Clone)]
pub struct DataDir {
    /// The directory.
    pub root: PathBuf,
}

impl DataDir {
    /// The data directory at `root` (not created yet).
    pub fn new(root: impl Into<PathBuf>) -> DataDir {
        DataDir { root: root.into() }
    }
    /// `node.key`
    pub fn key(&self) -> PathBuf {
        self.root.join("node.key")
    }
    /// `admin-token`
    pub fn admin_token(&self) -> PathBuf {
        self.root.join("admin-token")
    }
    /// `vouchd.toml`
    pub fn config(&self) -> PathBuf {
        self.root.join("vouchd.toml")
    }
    /// `store/`
    pub fn store(&self) -> PathBuf {
        self.root.join("store")
    }
    /// `vouchd.http`
    pub fn http_addr(&self) -> PathBuf {
        self.root.join("vouchd.http")
    }
    /// `vouchd.p2p`: the swarm's listen addresses, one per line, with
    /// `/p2p/<peer id>`, while running.
    pub fn p2p_addr(&self) -> PathBuf {
        self.root.join("vouchd.p2p")
    }

    /// Creates what is missing: the directory, the key, the admin token and
    /// the default config. Never overwrites. Returns what it created.
    pub fn init(&self) -> Result<Vec<PathBuf>> {
        let mut created = Vec::new();
        if !self.root.exists() {
            fs::DirBuilder::new()
                .recursive(true)
                .mode(0o700)
                .create(&self.root)
                .with_context(|| format!("creating {}", self.root.display()))?;
            created.push(self.root.clone());
        }
        if !self.key().exists() {
            let key = SecretKey::generate()?;
            write_secret_key(&self.key(), &key)?;
            write_public_key(&public_key_path(&self.key()), &key.public_key())?;
            created.push(self.key());
        }
        if !self.admin_token().exists() {
            let mut raw = [0u8; 32];
            getrandom::fill(&mut raw).map_err(|e| anyhow::anyhow!("no randomness: {e}"))?;
            let mut f = fs::OpenOptions::new()
                .write(true)
                .create_new(true)
                .mode(0o600)
                .open(self.admin_token())
                .with_context(|| format!("creating {}", self.admin_token().display()))?;
            f.write_all(format!("{}\n", hex::encode(raw)).as_bytes())?;
            f.sync_all()?;
            created.push(self.admin_token());
        }
        if !self.config().exists() {
            fs::write(self.config(), config::DEFAULT_FILE)
                .with_context(|| format!("writing {}", self.config().display()))?;
            created.push(self.config());
        }
        Ok(created)
    }

    /// The node's signing key.
    pub fn load_key(&self) -> Result<SecretKey> {
        Ok(read_secret_key(&self.key())?)
    }

    /// The admin token, refused when others can read it.
    pub fn load_admin_token(&self) -> Result<String> {
        load_token(&self.admin_token())
    }
}

/// Reads a token file (mode 0600 or stricter).
pub fn load_token(path: &Path) -> Result<String> {
    let meta = fs::metadata(path).with_context(|| format!("reading {}", path.display()))?;
    let mode = meta.permissions().mode() & 0o777;
    if mode & 0o077 != 0 {
        bail!(
            "{}: mode {mode:04o} lets group or others read the admin token; run `chmod 600 {}`",
            path.display(),
            path.display()
        );
    }
    if meta.len() > 4096 {
        bail!("{}: too large for a token", path.display());
    }
    let token = fs::read_to_string(path)?.trim().to_string();
    if token.len() < 16 {
        bail!(
            "{}: the admin token is shorter than 16 characters",
            path.display()
        );
    }
    Ok(token)
}
