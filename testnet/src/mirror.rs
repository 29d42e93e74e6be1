//! A local Arch Linux-style mirror for the demo and tests: package files
//! and a `core.db` repository database (gzip tar of `desc` entries), served
//! through `file://` URLs.

use std::io::Write as _;
use std::path::Path;

use anyhow::{Context as _, Result};
use vouch_attest::Digest;

/// Writes `packages` (name, version) into `root/<repo>/os/x86_64/` and
/// returns the mirror URL with `$repo` and `$arch`.
pub fn write_arch_mirror(root: &Path, repo: &str, packages: &[(&str, &str)]) -> Result<String> {
    let dir = root.join(repo).join("os").join("x86_64");
    std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
    let mut tar = tar::Builder::new(Vec::new());
    for (name, version) in packages {
        let filename = format!("{name}-{version}-x86_64.pkg.tar.zst");
        let content = format!("demo package {name} {version}\n");
        std::fs::write(dir.join(&filename), &content)?;
        let desc = format!(
            "%FILENAME%\n{filename}\n\n%NAME%\n{name}\n\n%BASE%\n{name}\n\n%VERSION%\n{version}\n\n\
             %DESC%\nA demo package\n\n%CSIZE%\n{size}\n\n%ISIZE%\n{size}\n\n%SHA256SUM%\n{sha}\n\n\
             %URL%\nhttps://vouch.invalid/\n\n%LICENSE%\nGPL-3.0-or-later\n\n%ARCH%\nx86_64\n\n\
             %BUILDDATE%\n1795651200\n\n%PACKAGER%\nDemo Packager <demo@vouch.invalid>\n\n",
            size = content.len(),
            sha = Digest::of(content.as_bytes()),
        );
        let mut h = tar::Header::new_gnu();
        h.set_size(desc.len() as u64);
        h.set_mode(0o644);
        h.set_cksum();
        tar.append_data(&mut h, format!("{name}-{version}/desc"), desc.as_bytes())?;
    }
    let tar = tar.into_inner()?;
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    gz.write_all(&tar)?;
    std::fs::write(dir.join(format!("{repo}.db")), gz.finish()?)?;
    Ok(format!("file://{}/$repo/os/$arch", root.display()))
}
