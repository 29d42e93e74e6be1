//! The dashboard in a real browser: headless Chromium (Debian's, installed
//! by `.ci/run`) loads the pages of a node of the demo federation, which
//! hold no script and forbid any, and the test checks what they show; screenshots (desktop
//! and phone width) are saved under the target directory.

use std::path::Path;
use std::process::Command;

use vouch_attest::{Envelope, Outcome, sign};
use vouch_testnet::demo::start_federation;
use vouch_testnet::http::get_bytes;
use vouch_testnet::keys::node_key;
use vouch_testnet::rebuild::have_tools;

/// Chromium's flags for a headless run as root. The pages' own
/// Content-Security-Policy allows no script, so they are seen as they are
/// without JavaScript (and the test checks they hold none).
fn chromium(args: &[&str]) -> String {
    let profile = tempfile::tempdir().unwrap();
    let out = Command::new("chromium")
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-dev-shm-usage",
            "--no-first-run",
        ])
        .arg(format!("--user-data-dir={}", profile.path().display()))
        .args(args)
        .output()
        .expect("running chromium");
    assert!(
        out.status.success(),
        "chromium failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// The DOM Chromium built for `url`.
fn dom(url: &str) -> String {
    chromium(&["--dump-dom", url])
}

fn screenshot(url: &str, path: &Path, size: &str) {
    chromium(&[
        &format!("--screenshot={}", path.display()),
        &format!("--window-size={size}"),
        "--hide-scrollbars",
        url,
    ]);
    let png = std::fs::read(path).unwrap();
    assert!(
        png.starts_with(b"\x89PNG"),
        "{} is not a PNG",
        path.display()
    );
    assert!(png.len() > 10_000, "{} is nearly empty", path.display());
}

/// The text of the DOM without tags (for checks on what is shown).
fn text(dom: &str) -> String {
    let mut out = String::new();
    let mut in_tag = false;
    for c in dom.chars() {
        match c {
            '<' => in_tag = true,
            '>' => {
                in_tag = false;
                out.push(' ');
            }
            c if !in_tag => out.push(c),
            _ => {}
        }
    }
    out.split_whitespace().collect::<Vec<_>>().join(" ")
}

#[test]
fn the_dashboard_shows_repositories_verdicts_disagreements_and_forks_in_chromium() {
    if !have_tools(&["chromium"], "apt-get install chromium") {
        return;
    }
    let t = tempfile::tempdir().unwrap();
    let fed = start_federation(t.path(), 2, 2).unwrap();
    // Node 2: GOOD 3, BAD 1 (unrepro-kernel), FAIL 1 (flaky-llvm).
    let node = &fed.net.nodes[1];
    let url = node.url();

    let home = dom(&format!("{url}/"));
    let shown = text(&home);
    assert!(shown.contains("archlinux core x86_64"), "{shown}");
    assert!(shown.contains("60.0%"), "3 of 5 reproduced: {shown}");
    assert!(shown.contains("Last builds"), "{shown}");
    assert!(shown.contains("10 verdicts stored"), "{shown}");
    assert!(!home.contains("<script"), "no script on the page");

    // The search finds the package; its page shows both signers.
    let found = dom(&format!("{url}/search?q=flaky"));
    let sha = found
        .split("href=\"/artifact/")
        .nth(1)
        .and_then(|s| s.get(..64))
        .unwrap_or_else(|| panic!("no artifact link: {found}"))
        .to_string();
    assert!(text(&found).contains("flaky-llvm"), "{found}");
    let page = text(&dom(&format!("{url}/artifact/{sha}")));
    assert!(page.contains("flaky-llvm 19.1.7-1"), "{page}");
    assert!(
        page.contains("Signers disagree about this artifact"),
        "{page}"
    );
    assert!(page.contains("this node"), "{page}");
    assert!(page.contains("FAIL build"), "{page}");
    assert!(page.contains("GOOD"), "{page}");
    assert!(page.contains("log"), "{page}");
    // A sha256 typed into the search goes to its artifact.
    let by_sha = text(&dom(&format!("{url}/search?q={sha}")));
    assert!(by_sha.contains("flaky-llvm 19.1.7-1"), "{by_sha}");
    // The build log the link names is served as plain text.
    let art = dom(&format!("{url}/artifact/{sha}"));
    let log = art
        .split("href=\"/evidence/")
        .nth(1)
        .and_then(|s| s.get(..64))
        .expect("a log link");
    let log_text = dom(&format!("{url}/evidence/{log}"));
    assert!(!text(&log_text).is_empty());

    // Node 1 signs a second, different entry at a seq it already used: a
    // fork. Node 2 keeps the proof and marks node 1 on every page.
    let k1 = node_key(1);
    let log0 = get_bytes(
        url,
        &format!(
            "/api/vouch/v1/log/{}?from=0&limit=1",
            k1.public_key().to_text().replace('+', "%2B")
        ),
    )
    .unwrap();
    let first = vouch_attest::split_envelopes(&log0, 1).unwrap()[0];
    let mut other = Envelope::decode(first)
        .unwrap()
        .unverified_verdict()
        .unwrap();
    other.outcome = Outcome::Bad {
        rebuilt_sha256: vouch_attest::Digest::of(b"a second history"),
    };
    let forged = sign(&other, &k1).unwrap();
    node.submit(&[forged]).unwrap();
    let forked = text(&dom(&format!("{url}/artifact/{sha}")));
    assert!(forked.contains("forked"), "{forked}");
    assert!(forked.contains("forked their log"), "{forked}");

    // Screenshots, desktop and phone.
    let shots = Path::new(env!("CARGO_TARGET_TMPDIR"));
    screenshot(&format!("{url}/"), &shots.join("dashboard.png"), "1200,900");
    screenshot(
        &format!("{url}/artifact/{sha}"),
        &shots.join("dashboard-artifact-phone.png"),
        "390,844",
    );
    eprintln!("screenshots in {}", shots.display());
}
