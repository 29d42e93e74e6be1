//! A federation of real `vouchd` processes on loopback, wired through
//! bootstrap peers only: node 0 starts alone, every other node is given
//! node 0's address and finds the rest through Kademlia.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use anyhow::{Context as _, Result, bail};

use crate::http;
use crate::node::NodeProcess;

/// Options of a testnet.
#[derive(Debug, Clone)]
pub struct Options {
    /// Seconds between anti-entropy rounds.
    pub sync_interval: u64,
    /// Extra arguments for every `vouchd run`.
    pub extra: Vec<String>,
    /// Give node N the test-only key of `keys/testnet/node-N.toml` instead
    /// of a fresh one.
    pub keyring_keys: bool,
    /// A `vouchd.toml` for every node.
    pub config: Option<String>,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            sync_interval: 2,
            extra: Vec::new(),
            keyring_keys: false,
            config: None,
        }
    }
}

/// Running nodes; all are killed when this is dropped.
pub struct Testnet {
    /// The nodes, in start order.
    pub nodes: Vec<NodeProcess>,
    dir: PathBuf,
    options: Options,
    bootstrap: String,
}

impl Testnet {
    /// Starts `n` nodes with data directories under `dir`.
    pub fn start(dir: &Path, n: usize, options: Options) -> Result<Testnet> {
        if n == 0 {
            bail!("a testnet needs at least one node");
        }
        std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
        let mut net = Testnet {
            nodes: Vec::with_capacity(n),
            dir: dir.to_path_buf(),
            options,
            bootstrap: String::new(),
        };
        let first = net.spawn_node(0, None)?;
        net.bootstrap = first
            .p2p_addrs()?
            .into_iter()
            .next()
            .context("node 0 has no p2p address")?;
        net.nodes.push(first);
        for i in 1..n {
            let boot = net.bootstrap.clone();
            let node = net.spawn_node(i, Some(&boot))?;
            net.nodes.push(node);
        }
        Ok(net)
    }

    fn spawn_node(&self, i: usize, bootstrap: Option<&str>) -> Result<NodeProcess> {
        let data = self.dir.join(format!("node-{}", i + 1));
        std::fs::create_dir_all(&data)?;
        let mut perms = std::fs::metadata(&data)?.permissions();
        std::os::unix::fs::PermissionsExt::set_mode(&mut perms, 0o700);
        std::fs::set_permissions(&data, perms)?;
        if self.options.keyring_keys && !data.join("node.key").exists() {
            let key = crate::keys::node_key(i + 1);
            vouch_attest::write_secret_key(&data.join("node.key"), &key)?;
            vouch_attest::write_public_key(&data.join("node.key.pub"), &key.public_key())?;
        }
        let config = loopback_caps(self.options.config.as_deref().unwrap_or(""));
        std::fs::write(data.join("vouchd.toml"), config)?;
        let interval = self.options.sync_interval.to_string();
        let mut args: Vec<&str> = vec!["--sync-interval", &interval];
        if let Some(b) = bootstrap {
            args.extend(["--bootstrap", b]);
        }
        args.extend(self.options.extra.iter().map(String::as_str));
        NodeProcess::start(&data, &args)
    }

    /// Starts one more node that joins through node 0.
    pub fn add_node(&mut self) -> Result<&mut NodeProcess> {
        let i = self.nodes.len();
        let boot = self.bootstrap.clone();
        let node = self.spawn_node(i, Some(&boot))?;
        self.nodes.push(node);
        self.nodes.last_mut().context("just pushed")
    }

    /// Waits until every running node is connected to at least `min` peers.
    pub fn wait_connected(&mut self, min: usize, timeout: Duration) -> Result<()> {
        let deadline = Instant::now() + timeout;
        loop {
            let mut ok = true;
            for n in &mut self.nodes {
                if !n.is_running() {
                    continue;
                }
                let peers = http::get_json(n.url(), "/api/vouch/v1/peers")?;
                if peers["peers"].as_array().map_or(0, Vec::len) < min {
                    ok = false;
                    break;
                }
            }
            if ok {
                return Ok(());
            }
            if Instant::now() > deadline {
                bail!("nodes did not connect to {min} peers each within {timeout:?}");
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// Waits until `check` holds for every running node.
    pub fn wait_all(
        &mut self,
        timeout: Duration,
        mut check: impl FnMut(&NodeProcess) -> Result<bool>,
    ) -> Result<Duration> {
        let start = Instant::now();
        loop {
            let mut ok = true;
            for n in &mut self.nodes {
                if n.is_running() && !check(n)? {
                    ok = false;
                    break;
                }
            }
            if ok {
                return Ok(start.elapsed());
            }
            if start.elapsed() > timeout {
                bail!("not every node got there within {timeout:?}");
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// Stops every node cleanly.
    pub fn stop(&mut self) -> Result<()> {
        for n in &mut self.nodes {
            n.stop()?;
        }
        Ok(())
    }
}

/// Every testnet node connects from 127.0.0.1, where a real node would see
/// one address per operator: unless the config sets its own, the address
/// caps are lifted (the total cap stays).
fn loopback_caps(config: &str) -> String {
    if config.contains("max_inbound_per_ip") {
        return config.to_string();
    }
    let caps = "max_inbound_per_ip = 1000\nmax_inbound_per_subnet = 1000\n";
    match config.find("[p2p]\n") {
        Some(at) => {
            let at = at + "[p2p]\n".len();
            format!("{}{caps}{}", &config[..at], &config[at..])
        }
        None => format!("{config}\n[p2p]\n{caps}"),
    }
}
