//! Where an isolated build is staged: a directory outside the data
//! directory (which the build user cannot enter), owned by the build user,
//! holding the build's inputs and receiving its outputs; and the command
//! prefix that runs as that user.

use std::path::{Path, PathBuf};

/// A staged build.
pub struct Stage {
    /// Removed when the stage is dropped.
    pub dir: tempfile::TempDir,
    /// Prepended to every command of the build: `setpriv` to the build
    /// user when the daemon is root, nothing otherwise.
    pub runner: Vec<String>,
}

impl Stage {
    /// Stages the files of `src`, if any (into `src/`), makes `built/`, and gives
    /// the build user `own` (cache directories it writes to) as well.
    pub fn new(
        staging: &Path,
        build_user: &str,
        src: Option<&Path>,
        own: &[PathBuf],
    ) -> Result<Stage, String> {
        let dir = tempfile::Builder::new()
            .prefix("vouch-build-")
            .tempdir_in(staging)
            .map_err(|e| format!("cannot stage in {}: {e}", staging.display()))?;
        let staged = dir.path().join("src");
        let built = dir.path().join("built");
        let mut owned = vec![dir.path().to_path_buf(), staged.clone(), built.clone()];
        std::fs::create_dir_all(&staged).map_err(|e| e.to_string())?;
        std::fs::create_dir_all(&built).map_err(|e| e.to_string())?;
        if let Some(src) = src {
            for e in std::fs::read_dir(src).map_err(|e| format!("{}: {e}", src.display()))? {
                let e = e.map_err(|e| e.to_string())?;
                let to = staged.join(e.file_name());
                std::fs::copy(e.path(), &to).map_err(|e| e.to_string())?;
                owned.push(to);
            }
        }
        for d in own {
            std::fs::create_dir_all(d)
                .map_err(|e| format!("cannot create {}: {e}", d.display()))?;
            owned.push(d.clone());
        }
        let mut runner = Vec::new();
        if is_root() {
            let (uid, gid) = user_ids(build_user)?;
            for p in &owned {
                std::os::unix::fs::chown(p, Some(uid), Some(gid))
                    .map_err(|e| format!("{}: {e}", p.display()))?;
            }
            runner = vec![
                "setpriv".into(),
                format!("--reuid={uid}"),
                format!("--regid={gid}"),
                "--init-groups".into(),
                "--".into(),
                "env".into(),
                format!("HOME={}", dir.path().display()),
                format!("TMPDIR={}", dir.path().display()),
            ];
        }
        Ok(Stage { dir, runner })
    }

    /// `path` inside the stage.
    pub fn path(&self, path: &str) -> PathBuf {
        self.dir.path().join(path)
    }

    /// Writes a file into the stage, owned like the stage.
    pub fn write(&self, name: &str, text: &str) -> Result<PathBuf, String> {
        let p = self.path(name);
        std::fs::write(&p, text).map_err(|e| format!("cannot write {}: {e}", p.display()))?;
        self.give(&p)?;
        Ok(p)
    }
}

impl Stage {
    /// Makes a blank (sparse) file of `len` bytes the build user may write.
    pub fn create_blank(&self, name: &str, len: u64) -> Result<PathBuf, String> {
        let p = self.path(name);
        let f = std::fs::File::create(&p).map_err(|e| format!("{}: {e}", p.display()))?;
        f.set_len(len)
            .map_err(|e| format!("{}: {e}", p.display()))?;
        self.give(&p)?;
        Ok(p)
    }

    /// Copies the regular files (links are not followed) the build left in
    /// `built/` whose names `keep` accepts into `output`; their names, and
    /// the first copy that failed.
    pub fn collect(
        &self,
        output: &Path,
        keep: impl Fn(&str) -> bool,
    ) -> (Vec<String>, Option<String>) {
        let mut copied = Vec::new();
        let mut failed = None;
        let Ok(entries) = std::fs::read_dir(self.path("built")) else {
            return (copied, failed);
        };
        for e in entries.flatten() {
            let p = e.path();
            let plain = std::fs::symlink_metadata(&p).is_ok_and(|m| m.is_file());
            let Some(name) = p.file_name().and_then(|n| n.to_str()) else {
                continue;
            };
            if !plain || !keep(name) {
                continue;
            }
            match std::fs::copy(&p, output.join(name)) {
                Ok(_) => copied.push(name.to_string()),
                Err(e) => {
                    failed.get_or_insert_with(|| format!("{}: {e}", p.display()));
                }
            }
        }
        (copied, failed)
    }

    /// Gives `p` to the owner of the stage.
    fn give(&self, p: &Path) -> Result<(), String> {
        if is_root() {
            use std::os::unix::fs::MetadataExt as _;
            let m = std::fs::metadata(self.dir.path()).map_err(|e| e.to_string())?;
            std::os::unix::fs::chown(p, Some(m.uid()), Some(m.gid()))
                .map_err(|e| format!("{}: {e}", p.display()))?;
        }
        Ok(())
    }
}

/// Whether this process is root.
pub fn is_root() -> bool {
    use std::os::unix::fs::MetadataExt as _;
    std::fs::metadata("/proc/self").is_ok_and(|m| m.uid() == 0)
}

/// The uid and gid of `user`.
fn user_ids(user: &str) -> Result<(u32, u32), String> {
    let id = |flag: &str| -> Result<u32, String> {
        let out = std::process::Command::new("id")
            .args([flag, user])
            .output()
            .map_err(|e| e.to_string())?;
        String::from_utf8_lossy(&out.stdout)
            .trim()
            .parse()
            .map_err(|_| {
                format!(
                    "the build user `{user}` does not exist: create it with `useradd --system \
                     --no-create-home {user}` and give it sub-ids with `usermod \
                     --add-subuids 300000-365535 --add-subgids 300000-365535 {user}` \
                     (see README, Isolation)"
                )
            })
    };
    Ok((id("-u")?, id("-g")?))
}
