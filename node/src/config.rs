//! `vouchd.toml`: the node's configuration. Every setting has a default; the
//! file written by `vouchd init` shows them all, commented.

use std::net::SocketAddr;
use std::path::Path;

use serde::{Deserialize, Serialize};

/// The whole configuration.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(deny_unknown_fields, default)]
pub struct Config {
    /// The HTTP API.
    pub http: HttpConfig,
    /// The ingest pipeline.
    pub ingest: IngestSettings,
    /// Which signers are accepted, and quotas.
    pub admission: crate::admission::AdmissionConfig,
    /// The peer-to-peer federation.
    pub p2p: P2pSettings,
    /// Repositories to watch, one profile each (`[[sync]]`).
    pub sync: Vec<crate::sync::SyncProfile>,
    /// Rebuilding: workers, backends, limits.
    pub rebuild: crate::worker::RebuildConfig,
    /// Remote workers.
    pub workers: WorkersConfig,
    /// Evidence of other signers' verdicts.
    pub evidence: EvidenceConfig,
    /// Logging.
    pub log: LogConfig,
}

/// Whose evidence a node fetches from its peers and keeps.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum KeepEvidence {
    /// The build logs and diffoscopes named by verdicts of the signers this
    /// node knows (keyring, `trusted`).
    Keyring,
    /// None but its own (blobs are still fetched for a reader who asks).
    None,
}

/// `[evidence]`
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct EvidenceConfig {
    /// Whose evidence to fetch and keep.
    pub keep: KeepEvidence,
    /// Evidence kept (compressed, this node's own included), in MiB: beyond
    /// it, blobs of others are no longer stored (a reader still gets them).
    pub quota_mib: u64,
}

impl Default for EvidenceConfig {
    fn default() -> Self {
        EvidenceConfig {
            keep: KeepEvidence::Keyring,
            quota_mib: 4096,
        }
    }
}

/// `[http]`
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct HttpConfig {
    /// Address to serve on.
    pub listen: SocketAddr,
    /// Largest request body, in bytes.
    pub max_body_bytes: usize,
    /// Most envelopes in one POST.
    pub max_batch: usize,
    /// Most sha256 values in one lookup.
    pub max_lookup: usize,
    /// Most verdicts returned for one artifact or name.
    pub max_per_artifact: usize,
    /// Most verdicts in one answer.
    pub max_results: usize,
    /// Connections served at once; more wait to be accepted.
    pub max_connections: usize,
    /// Seconds a request may take, from its headers to the end of the
    /// answer (reading the body included); then it is answered 408.
    pub request_timeout_secs: u64,
}

/// `[ingest]`
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct IngestSettings {
    /// Most verdicts written in one group commit.
    pub max_group: usize,
    /// Most entries held per signer while a gap in its log is open.
    pub max_pending_per_signer: u64,
}

/// `[p2p]`
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct P2pSettings {
    /// Run the libp2p swarm at all.
    pub enabled: bool,
    /// Multiaddrs to listen on (TCP and QUIC).
    pub listen: Vec<String>,
    /// Peers to start from: multiaddrs ending in `/p2p/<peer id>`.
    pub bootstrap: Vec<String>,
    /// A keyring directory (`keys/`): its rebuilders' multiaddrs are
    /// bootstrap peers and its signers are known to admission.
    pub keyring: Option<std::path::PathBuf>,
    /// Find peers on the local network with mDNS.
    pub mdns: bool,
    /// Seconds between anti-entropy rounds.
    pub sync_interval_secs: u64,
    /// Peers asked for their log heads per round.
    pub sync_peers: usize,
    /// Connections this node opens itself, at most.
    pub max_peers: usize,
    /// Inbound connections of peers outside the keyring, in total.
    pub max_inbound: usize,
    /// Inbound connections from one IP address (handshakes and established
    /// connections of unknown peers counted apart).
    pub max_inbound_per_ip: usize,
    /// Inbound connections of unknown peers from one subnet (/24, /48).
    pub max_inbound_per_subnet: usize,
    /// Inbound handshakes in progress, in total.
    pub max_pending_inbound: u32,
    /// Connections to one peer id.
    pub max_connections_per_peer: u32,
    /// Sync requests a peer may send per minute.
    pub peer_requests_per_minute: u32,
    /// Gossip messages a peer may send per second.
    pub peer_messages_per_second: u32,
}

impl Default for P2pSettings {
    fn default() -> Self {
        P2pSettings {
            enabled: true,
            listen: vec![
                "/ip4/0.0.0.0/tcp/4001".into(),
                "/ip4/0.0.0.0/udp/4001/quic-v1".into(),
            ],
            bootstrap: Vec::new(),
            keyring: None,
            mdns: false,
            sync_interval_secs: 30,
            sync_peers: 3,
            max_peers: 50,
            max_inbound: 128,
            max_inbound_per_ip: 4,
            max_inbound_per_subnet: 16,
            max_pending_inbound: 32,
            max_connections_per_peer: 2,
            peer_requests_per_minute: 600,
            peer_messages_per_second: 2000,
        }
    }
}

/// `[workers]`
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(deny_unknown_fields, default)]
pub struct WorkersConfig {
    /// Public keys (`ed25519:...`) of remote workers allowed to lease jobs.
    pub authorized: Vec<String>,
}

/// `[log]`
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct LogConfig {
    /// `error`, `warn`, `info`, `debug`, `trace`, or a `RUST_LOG`-style filter.
    pub level: String,
}

impl Default for HttpConfig {
    fn default() -> Self {
        HttpConfig {
            listen: SocketAddr::from(([127, 0, 0, 1], 8484)),
            max_body_bytes: 64 << 20,
            max_batch: 10_000,
            max_lookup: 10_000,
            max_per_artifact: 1_000,
            max_results: 200_000,
            max_connections: 512,
            request_timeout_secs: 60,
        }
    }
}

impl Default for IngestSettings {
    fn default() -> Self {
        IngestSettings {
            max_group: 8192,
            max_pending_per_signer: 100_000,
        }
    }
}

impl Default for LogConfig {
    fn default() -> Self {
        LogConfig {
            level: "info".into(),
        }
    }
}

/// The file `vouchd init` writes: every setting, commented, at its default.
pub const DEFAULT_FILE: &str = r#"# vouchd configuration. Every setting is shown at its default; uncomment
# and change what you need. Command-line flags override this file.

[http]
# Address of the HTTP API (--http).
#listen = "127.0.0.1:8484"
# Largest request body in bytes (a POST of envelopes, a lookup).
#max_body_bytes = 67108864
# Most envelopes accepted in one POST /api/vouch/v1/verdicts.
#max_batch = 10000
# Most sha256 values in one POST /api/vouch/v1/verdicts/lookup.
#max_lookup = 10000
# Most verdicts returned for one artifact or one package name.
#max_per_artifact = 1000
# Most verdicts in one answer; larger answers say "truncated": true.
#max_results = 200000
# Connections served at once; more wait to be accepted. Request headers must
# arrive within 30 s.
#max_connections = 512
# Seconds a request may take, body included, before it is answered 408.
#request_timeout_secs = 60

[ingest]
# Most verdicts written and flushed together in one group commit.
#max_group = 8192
# Most entries held per signer while waiting for a gap in its log to close.
#max_pending_per_signer = 100000

[admission]
# "any": store verdicts of any signer (within the quotas below);
# "keyring": only signers of the keyring ([p2p] keyring), this node and `trusted`.
#accept = "any"
# Extra known signers, exempt from the quotas: ["ed25519:...", ...]
#trusted = []
# Identities are free: every quota on signers that are not known holds per
# signer and for all of them together. Verdicts held pending count.
# Most verdicts stored per signer that is not known.
#unknown_signer_max_verdicts = 100000
# Most verdicts stored for all signers that are not known, together.
#unknown_total_max_verdicts = 2000000
# Most verdicts per minute accepted per signer that is not known.
#unknown_signer_per_minute = 60000
# Most verdicts per minute accepted from all signers that are not known.
#unknown_total_per_minute = 300000

[p2p]
# Run the libp2p swarm (gossip, sync, discovery). --no-p2p turns it off.
#enabled = true
# Listen addresses (--p2p-listen). Port 0 picks a free port; the addresses
# are written to DATA_DIR/vouchd.p2p.
#listen = ["/ip4/0.0.0.0/tcp/4001", "/ip4/0.0.0.0/udp/4001/quic-v1"]
# Peers to start from, /ip4/.../tcp/.../p2p/<peer id> (--bootstrap).
#bootstrap = []
# A keyring directory (keys/): bootstrap peers and known signers (--keyring).
# keyring = "keys"
# Discover peers on the local network with mDNS.
#mdns = false
# Seconds between anti-entropy rounds, and peers asked per round.
#sync_interval_secs = 30
#sync_peers = 3
# Connections this node opens itself, at most.
#max_peers = 50
# Inbound connections of peers outside the keyring: in total, from one IP
# address, from one subnet (/24 for IPv4, /48 for IPv6). Keyring peers are
# exempt once their handshake shows who they are.
#max_inbound = 128
#max_inbound_per_ip = 4
#max_inbound_per_subnet = 16
# Inbound handshakes in progress, in total (also at most max_inbound_per_ip
# from one address); connections to one peer id.
#max_pending_inbound = 32
#max_connections_per_peer = 2
# Per-peer limits: sync requests per minute, gossip messages per second.
#peer_requests_per_minute = 600
#peer_messages_per_second = 2000

# Repositories to watch: one [[sync]] table per profile. None by default.
# Example (Arch Linux):
#   [[sync]]
#   name = "arch-core"
#   distribution = "archlinux"
#   mirror = "https://geo.mirror.pkgbuild.com/$repo/os/$arch"
#   repos = ["core"]
#   architectures = ["x86_64"]
#   include = ["*"]          # globs on package names
#   exclude = []
#   maintainer = "..."       # optional packager/maintainer filter
#   interval_secs = 3600
# Example (Debian):
#   [[sync]]
#   name = "debian-main"
#   distribution = "debian"
#   mirror = "https://deb.debian.org/debian"
#   releases = ["bookworm"]
#   components = ["main"]
#   architectures = ["amd64"]
#   # InRelease is verified against this keyring (the default), then every
#   # index against InRelease. allow_unsigned = true skips it (apt's
#   # trusted=yes). Arch profiles verify <repo>.db.sig when given a keyring.
#   keyring = "/usr/share/keyrings/debian-archive-keyring.gpg"

[rebuild]
# In-process workers; 0: this node does not rebuild (it still stores,
# serves and gossips other signers' verdicts).
#workers = 0
# Seconds before a build's whole process group is killed.
#timeout_secs = 14400
# Bytes of build log kept (as a zstd blob, named in the verdict).
#max_log_bytes = 16777216
# Seconds a worker's lease lasts without a heartbeat.
#lease_secs = 300
# diffoscope, run on BAD results (skipped when not installed).
#diffoscope = ["diffoscope", "--text", "-"]
#diffoscope_timeout_secs = 900
#max_diffoscope_bytes = 16777216
# Largest published artifact fetched.
#max_artifact_bytes = 8589934592
# Backend per distribution, e.g.:
#   [[rebuild.backends]]
#   distribution = "archlinux"
#   backend = { kind = "archlinux-repro", command = "repro",
#               isolation = "namespace", network = false, binds = [],
#               build_user = "vouch-build", staging = "/tmp" }
#   (or { kind = "demo" }, or { kind = "exec", command = ["my-recipe"] },
#   or { kind = "debian", isolation = "namespace",
#        mirrors = ["http://deb.debian.org/debian"], components = ["main"],
#        build_user = "vouch-build", staging = "/tmp",
#        cache = "/tmp/vouch-apt-cache", max_environments = 8 }:
#   the recorded environment of each .buildinfo; isolation = "vm" adds
#   vm = { image = "IMAGE", accel = "kvm", qemu = "qemu-system-x86_64",
#          cpus = 2, memory_mib = 4096, output_mib = 1024,
#          check_timeout_secs = 20 }, see README "Isolation")
# Without one, a distribution uses the demo backend.
#backends = []

[workers]
# Public keys of remote workers (`vouchd worker --key PATH`) allowed to lease
# jobs; each request is signed with the worker's key.
#authorized = []

[rebuild.retry]
# Retries after FAIL (did not build) and after BAD (built, differs).
#fail_retries = 3
#bad_retries = 1
# First back-off in seconds, doubled per attempt, at most max_backoff_secs.
#backoff_secs = 3600
#max_backoff_secs = 604800

[evidence]
# Whose build logs and diffoscopes this node fetches from its peers and
# keeps: "keyring" (the signers it knows: keyring and trusted) or "none".
# A blob it lacks is fetched from peers for whoever asks either way.
#keep = "keyring"
# Evidence kept, compressed, this node's own included, in MiB; beyond it,
# others' blobs are no longer stored.
#quota_mib = 4096

[log]
# error, warn, info, debug, trace, or a RUST_LOG-style filter such as
# "vouch_node=debug,info" (--log-level; RUST_LOG wins when set).
#level = "info"
"#;

/// Reads a config file, naming the file, line and column of any mistake.
pub fn load(path: &Path) -> anyhow::Result<Config> {
    let text =
        std::fs::read_to_string(path).map_err(|e| anyhow::anyhow!("{}: {e}", path.display()))?;
    toml::from_str(&text).map_err(|e| {
        let (line, col) = e
            .span()
            .map(|s| {
                let before = &text[..s.start.min(text.len())];
                let line = before.matches('\n').count() + 1;
                let col = s.start - before.rfind('\n').map_or(0, |p| p + 1) + 1;
                (line, col)
            })
            .unwrap_or((0, 0));
        anyhow::anyhow!("{}:{line}:{col}: {}", path.display(), e.message())
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_default_file_is_the_default_config() {
        let parsed: Config = toml::from_str(DEFAULT_FILE).unwrap();
        assert_eq!(parsed, Config::default());
        // Uncommenting every setting gives the defaults too.
        let uncommented = DEFAULT_FILE
            .lines()
            .map(|l| {
                if l.starts_with('#') && l.contains(" = ") && !l.starts_with("# ") {
                    &l[1..]
                } else {
                    l
                }
            })
            .collect::<Vec<_>>()
            .join("\n");
        let parsed: Config = toml::from_str(&uncommented).unwrap();
        assert_eq!(parsed, Config::default());
    }

    #[test]
    fn mistakes_name_the_line() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("vouchd.toml");
        std::fs::write(&p, "[http]\nlisten = \"nowhere\"\n").unwrap();
        let err = load(&p).unwrap_err().to_string();
        assert!(err.contains("vouchd.toml:2:"), "{err}");
        std::fs::write(&p, "[htp]\n").unwrap();
        assert!(load(&p).unwrap_err().to_string().contains("vouchd.toml:1:"));
    }
}
