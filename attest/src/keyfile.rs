//! Key files. A secret key file holds one line, `ed25519-secret:<base64 of
//! the 32-byte seed>`, and must be readable by its owner only. A public key
//! file holds `ed25519:<base64>`.
//!
//! This is the only place the crate touches the disk.

use std::fs;
use std::io::Write as _;
use std::os::unix::fs::{OpenOptionsExt as _, PermissionsExt as _};
use std::path::{Path, PathBuf};

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use zeroize::Zeroizing;

use crate::error::KeyError;
use crate::keys::{PublicKey, SecretKey};

const SECRET_PREFIX: &str = "ed25519-secret:";
/// Largest key file read, in bytes.
const MAX_KEY_FILE: u64 = 4096;

/// Writes `key` to `path` with mode 0600, refusing to overwrite an existing
/// file.
pub fn write_secret_key(path: &Path, key: &SecretKey) -> Result<(), KeyError> {
    let io = |source| KeyError::Io {
        path: path.to_path_buf(),
        source,
    };
    let mut file = fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)
        .map_err(|e| {
            if e.kind() == std::io::ErrorKind::AlreadyExists {
                KeyError::Exists(path.to_path_buf())
            } else {
                io(e)
            }
        })?;
    // The umask can only remove bits; make sure of 0600 anyway.
    file.set_permissions(fs::Permissions::from_mode(0o600))
        .map_err(io)?;
    let line = Zeroizing::new(format!("{SECRET_PREFIX}{}\n", STANDARD.encode(*key.seed())));
    file.write_all(line.as_bytes()).map_err(io)?;
    file.sync_all().map_err(io)?;
    Ok(())
}

/// Writes the public key file (`ed25519:<base64>` and a newline).
pub fn write_public_key(path: &Path, key: &PublicKey) -> Result<(), KeyError> {
    fs::write(path, format!("{}\n", key.to_text())).map_err(|source| KeyError::Io {
        path: path.to_path_buf(),
        source,
    })
}

/// Reads a secret key file, refusing it when group or others can read or
/// write it.
pub fn read_secret_key(path: &Path) -> Result<SecretKey, KeyError> {
    let io = |source| KeyError::Io {
        path: path.to_path_buf(),
        source,
    };
    let meta = fs::metadata(path).map_err(io)?;
    let mode = meta.permissions().mode() & 0o7777;
    if mode & 0o077 != 0 {
        return Err(KeyError::Permissions {
            path: path.to_path_buf(),
            mode,
        });
    }
    let text = Zeroizing::new(read_small(path)?);
    let format = |message: &str| KeyError::Format {
        path: path.to_path_buf(),
        message: message.to_string(),
    };
    let b64 = text.trim().strip_prefix(SECRET_PREFIX).ok_or_else(|| {
        format("not a vouch secret key (expected a line `ed25519-secret:<base64>`)")
    })?;
    let raw = Zeroizing::new(
        STANDARD
            .decode(b64)
            .map_err(|_| format("the base64 after `ed25519-secret:` is not valid"))?,
    );
    let seed: &[u8; 32] = raw
        .as_slice()
        .try_into()
        .map_err(|_| format("the secret key is not 32 bytes"))?;
    Ok(SecretKey::from_seed(seed))
}

/// Reads a public key file (`ed25519:<base64>`).
pub fn read_public_key(path: &Path) -> Result<PublicKey, KeyError> {
    let text = read_small(path)?;
    text.trim().parse().map_err(|e| KeyError::Format {
        path: path.to_path_buf(),
        message: format!("{e}"),
    })
}

/// The conventional public key path beside a secret key: `PATH.pub`.
pub fn public_key_path(secret: &Path) -> PathBuf {
    let mut s = secret.as_os_str().to_owned();
    s.push(".pub");
    PathBuf::from(s)
}

fn read_small(path: &Path) -> Result<String, KeyError> {
    let io = |source| KeyError::Io {
        path: path.to_path_buf(),
        source,
    };
    let len = fs::metadata(path).map_err(io)?.len();
    if len > MAX_KEY_FILE {
        return Err(KeyError::Format {
            path: path.to_path_buf(),
            message: format!("{len} bytes is too large for a key file"),
        });
    }
    let bytes = fs::read(path).map_err(io)?;
    String::from_utf8(bytes).map_err(|_| KeyError::Format {
        path: path.to_path_buf(),
        message: "not UTF-8 text".to_string(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secret_key_round_trip_and_mode() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("node.key");
        let key = SecretKey::generate().unwrap();
        write_secret_key(&path, &key).unwrap();
        let mode = fs::metadata(&path).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);
        let back = read_secret_key(&path).unwrap();
        assert_eq!(back.public_key(), key.public_key());
        assert!(matches!(
            write_secret_key(&path, &key),
            Err(KeyError::Exists(_))
        ));
    }

    #[test]
    fn group_readable_secret_key_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("node.key");
        write_secret_key(&path, &SecretKey::from_seed(&[7; 32])).unwrap();
        fs::set_permissions(&path, fs::Permissions::from_mode(0o640)).unwrap();
        let err = read_secret_key(&path).unwrap_err();
        assert!(matches!(err, KeyError::Permissions { mode: 0o640, .. }));
        assert!(err.to_string().contains("chmod 600"), "{err}");
    }

    #[test]
    fn garbage_key_file_names_the_problem() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("k");
        fs::write(&path, "hello\n").unwrap();
        fs::set_permissions(&path, fs::Permissions::from_mode(0o600)).unwrap();
        let err = read_secret_key(&path).unwrap_err().to_string();
        assert!(err.contains("not a vouch secret key"), "{err}");
    }
}
