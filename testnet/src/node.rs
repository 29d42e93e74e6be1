//! A real `vouchd` process on loopback with its own data directory.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context as _, Result, bail};

use crate::demo::sibling_binary;

/// A running `vouchd`. Killed (SIGKILL) when dropped.
pub struct NodeProcess {
    child: Option<Child>,
    data_dir: PathBuf,
    http: String,
    extra: Vec<String>,
    /// A command prefix, e.g. `ip netns exec NS`.
    wrapper: Vec<String>,
}

impl NodeProcess {
    /// Starts `vouchd run` on `127.0.0.1:0` in `data_dir` and waits until it
    /// serves.
    pub fn start(data_dir: &Path, extra: &[&str]) -> Result<NodeProcess> {
        NodeProcess::start_wrapped(data_dir, extra, &[])
    }

    /// As [`NodeProcess::start`], with the command run through `wrapper`
    /// (e.g. `["ip", "netns", "exec", "ns1"]`). `extra` replaces the default
    /// listen addresses when it gives `--http` or `--p2p-listen`.
    pub fn start_wrapped(data_dir: &Path, extra: &[&str], wrapper: &[&str]) -> Result<NodeProcess> {
        let mut node = NodeProcess {
            child: None,
            data_dir: data_dir.to_path_buf(),
            http: String::new(),
            extra: extra.iter().map(|s| s.to_string()).collect(),
            wrapper: wrapper.iter().map(|s| s.to_string()).collect(),
        };
        node.spawn()?;
        Ok(node)
    }

    fn spawn(&mut self) -> Result<()> {
        let addr_file = self.data_dir.join("vouchd.http");
        let _ = std::fs::remove_file(&addr_file);
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.data_dir.with_extension("log"))
            .context("opening the node's log file")?;
        let vouchd = sibling_binary("vouchd")?;
        let mut cmd = match self.wrapper.split_first() {
            Some((first, rest)) => {
                let mut c = Command::new(first);
                c.args(rest).arg(&vouchd);
                c
            }
            None => Command::new(&vouchd),
        };
        cmd.arg("--data-dir").arg(&self.data_dir).arg("run");
        if !self.extra.iter().any(|a| a == "--http") {
            cmd.args(["--http", "127.0.0.1:0"]);
        }
        if !self.extra.iter().any(|a| a == "--p2p-listen") {
            cmd.args(["--p2p-listen", "/ip4/127.0.0.1/tcp/0"]);
        }
        let child = cmd
            .args(&self.extra)
            .env(
                "RUST_LOG",
                std::env::var("VOUCH_TEST_LOG").unwrap_or_else(|_| "warn".into()),
            )
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .context("starting vouchd")?;
        self.child = Some(child);
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            if let Ok(text) = std::fs::read_to_string(&addr_file)
                && text.ends_with('\n')
            {
                self.http = format!("http://{}", text.trim());
                return Ok(());
            }
            if let Some(status) = self
                .child
                .as_mut()
                .and_then(|c| c.try_wait().ok().flatten())
            {
                bail!(
                    "vouchd exited with {status} before serving; log: {}",
                    self.data_dir.with_extension("log").display()
                );
            }
            if Instant::now() > deadline {
                bail!("vouchd did not start serving within 30 s");
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// The HTTP base URL.
    pub fn url(&self) -> &str {
        &self.http
    }

    /// The swarm's listen addresses (with `/p2p/<peer id>`), waiting up to
    /// 10 s for the node to write them.
    pub fn p2p_addrs(&self) -> Result<Vec<String>> {
        let path = self.data_dir.join("vouchd.p2p");
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            if let Ok(text) = std::fs::read_to_string(&path) {
                let addrs: Vec<String> = text
                    .lines()
                    .map(str::to_string)
                    .filter(|l| !l.is_empty())
                    .collect();
                if !addrs.is_empty() {
                    return Ok(addrs);
                }
            }
            if Instant::now() > deadline {
                bail!("{} never appeared", path.display());
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// The libp2p peer id.
    pub fn peer_id(&self) -> Result<String> {
        let addr = self.p2p_addrs()?.into_iter().next().unwrap_or_default();
        addr.rsplit("/p2p/")
            .next()
            .map(str::to_string)
            .context("no /p2p/ in the address")
    }

    /// Whether the process is still running.
    pub fn is_running(&mut self) -> bool {
        self.child
            .as_mut()
            .is_some_and(|c| matches!(c.try_wait(), Ok(None)))
    }

    /// The data directory.
    pub fn data_dir(&self) -> &Path {
        &self.data_dir
    }

    /// The admin token.
    pub fn admin_token(&self) -> Result<String> {
        Ok(std::fs::read_to_string(self.data_dir.join("admin-token"))?
            .trim()
            .to_string())
    }

    /// SIGKILL, no chance to clean up.
    pub fn kill9(&mut self) -> Result<()> {
        if let Some(mut c) = self.child.take() {
            c.kill()?;
            c.wait()?;
        }
        Ok(())
    }

    /// SIGTERM and wait for a clean exit.
    pub fn stop(&mut self) -> Result<()> {
        if let Some(mut c) = self.child.take() {
            let rc = send_sigterm(c.id());
            if rc != 0 {
                c.kill()?;
            }
            let status = c.wait()?;
            if !status.success() {
                bail!("vouchd exited with {status} on SIGTERM");
            }
        }
        Ok(())
    }

    /// Starts the process again on the same data directory (new ports).
    pub fn restart(&mut self) -> Result<()> {
        self.stop()?;
        self.spawn()
    }

    /// Starts again after a crash (the process must be stopped).
    pub fn start_again(&mut self) -> Result<()> {
        if self.child.is_some() {
            bail!("still running");
        }
        self.spawn()
    }

    /// Runs `vouchd check` on the (stopped) node's store.
    pub fn check(&self) -> Result<String> {
        let out = Command::new(sibling_binary("vouchd")?)
            .arg("--data-dir")
            .arg(&self.data_dir)
            .arg("check")
            .output()?;
        // (The check opens the store itself; the node must be stopped.)
        if !out.status.success() {
            bail!("vouchd check: {}", String::from_utf8_lossy(&out.stderr));
        }
        Ok(String::from_utf8_lossy(&out.stdout).into_owned())
    }
}

fn send_sigterm(pid: u32) -> i32 {
    // std has no way to send SIGTERM; kill(1) does it without unsafe code.
    match Command::new("kill")
        .arg("-TERM")
        .arg(pid.to_string())
        .status()
    {
        Ok(s) if s.success() => 0,
        _ => -1,
    }
}

impl Drop for NodeProcess {
    fn drop(&mut self) {
        let _ = self.kill9();
    }
}

impl NodeProcess {
    /// Posts signed envelopes with the admin token; the node's answer.
    pub fn submit(&self, envelopes: &[vouch_attest::VerifiedVerdict]) -> Result<serde_json::Value> {
        let _ = rustls::crypto::ring::default_provider().install_default();
        let body = vouch_attest::join_envelopes(envelopes.iter().map(|v| v.envelope()));
        let token = self.admin_token()?;
        let url = format!("{}/api/vouch/v1/verdicts", self.url());
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()?;
        rt.block_on(async {
            let resp = reqwest::Client::new()
                .post(url)
                .header("content-type", "application/cbor")
                .bearer_auth(token)
                .body(body)
                .send()
                .await?;
            if !resp.status().is_success() {
                bail!("submit: HTTP {}", resp.status());
            }
            Ok(resp.json().await?)
        })
    }
}
