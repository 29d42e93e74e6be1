//! Command-line definitions.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};

const EXIT_CODES: &str = "\
Exit codes:
  0  verified / signature valid / file valid
  1  rejected / signature invalid
  2  unknown (not enough verdicts)
  3  usage or input error (malformed file, bad arguments)
  4  no node could be reached";

/// Check packages against signed rebuild verdicts.
///
/// vouch verifies ed25519-signed verdicts of independent rebuilders itself and
/// applies your N-of-M trust policy: it never trusts the node it asks.
#[derive(Debug, Parser)]
#[command(name = "vouch", version, after_help = EXIT_CODES)]
pub(crate) struct Cli {
    /// The client configuration (default: $XDG_CONFIG_HOME/vouch/client.toml
    /// when it exists and vouch does not run as root, else
    /// /etc/vouch/client.toml).
    #[arg(long, global = true, env = "VOUCH_CONFIG", value_name = "FILE")]
    pub(crate) config: Option<PathBuf>,
    #[command(subcommand)]
    pub(crate) command: Command,
}

#[derive(Debug, Subcommand)]
pub(crate) enum Command {
    /// Make a new ed25519 signing key: PATH (mode 0600) and PATH.pub.
    #[command(
        after_help = "With --json prints {\"secret_key\": PATH, \"public_key_file\": PATH.pub, \"public_key\": \"ed25519:...\"}."
    )]
    Keygen(KeygenArgs),
    /// Sign a verdict given as JSON, writing the CBOR envelope.
    #[command(after_help = SIGN_HELP)]
    Sign(SignArgs),
    /// Decode and verify a verdict envelope and print it.
    #[command(after_help = INSPECT_HELP)]
    Inspect(InspectArgs),
    /// Work with trust policy files.
    #[command(subcommand)]
    Policy(PolicyCommand),
    /// Check an artifact against a trust policy, with verdicts from nodes
    /// and/or files.
    #[command(after_help = VERIFY_HELP)]
    Verify(VerifyArgs),
    /// Send signed envelopes to a node (needs its admin token).
    #[command(
        after_help = "Exit 0 when every envelope was accepted, duplicate or pending; 1 when the node \
rejected some (each is listed with its reason); 3 on bad input; 4 when the node could not be reached. \
With --json prints the node's answer."
    )]
    Submit(SubmitArgs),
    /// Show a node's libp2p peers and their gossip scores.
    #[command(
        after_help = "Exit 0, or 4 when the node could not be reached. --json prints the node's answer."
    )]
    Peers {
        /// The node (base URL).
        #[arg(long = "node", value_name = "URL")]
        node: String,
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
    /// Show a node's statistics: per signer GOOD, BAD and FAIL (latest
    /// verdicts) per repository, and how its tracked signers agree.
    #[command(
        after_help = "The node keeps these counters as verdicts arrive (GET /api/vouch/v1/stats, spec/http-api.md): for this node and the signers it knows (its keyring and trusted list), the latest verdict of each per artifact; for each pair of them, how often their outcomes agree over the artifacts both judged, and when both said BAD, how often they rebuilt the same bytes. Verdicts of other signers are one aggregate. The counters are the node's own summary, not signed: verify what matters with vouch export.\n\nExit 0, or 4 when the node could not be reached. --json prints the node's answer."
    )]
    Stats {
        /// The node (base URL).
        #[arg(long = "node", value_name = "URL")]
        node: String,
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
    /// Join the gossip as a light peer and print every verdict and fork
    /// proof it carries, verified, as one JSON line each.
    #[command(after_help = WATCH_HELP)]
    Watch(WatchArgs),
    /// Show what nodes hold for a sha256 or a package name.
    #[command(after_help = QUERY_HELP)]
    Query(QueryArgs),
    /// Work with the client configuration.
    #[command(subcommand)]
    Config(ConfigCommand),
    /// Audit every installed package (dpkg and/or pacman) against the
    /// policy, in one batched lookup per node.
    #[command(after_help = CHECK_INSTALLED_HELP)]
    CheckInstalled(CheckInstalledArgs),
    /// The pacman hook (contrib/pacman/vouch.hook): reads the target names
    /// on stdin, checks each downloaded package, and fails to stop the
    /// transaction.
    #[command(after_help = PACMAN_HOOK_HELP)]
    PacmanHook(HookArgs),
    /// Print a shell completion script (bash, zsh, fish, elvish,
    /// powershell).
    #[command(
        after_help = "bash: vouch completions bash > /usr/share/bash-completion/completions/vouch\nzsh:  vouch completions zsh > /usr/share/zsh/vendor-completions/_vouch\nfish: vouch completions fish > /usr/share/fish/vendor_completions.d/vouch.fish"
    )]
    Completions {
        /// The shell.
        #[arg(value_enum)]
        shell: clap_complete::Shell,
    },
    /// Write the manual pages (vouch.1 and one per command) into a
    /// directory, or print vouch.1.
    Man {
        /// The directory (e.g. /usr/share/man/man1); without it, vouch.1 is
        /// printed.
        #[arg(long, value_name = "DIR")]
        out: Option<PathBuf>,
    },
    /// Write a bundle: every verdict and fork proof needed to judge a set of
    /// artifacts (the installed system, or --sha256 ...) offline.
    #[command(after_help = EXPORT_HELP)]
    Export(ExportArgs),
    /// The apt hook (contrib/apt/80vouch): reads apt's version 3
    /// Pre-Install-Pkgs protocol on stdin, hashes each .deb about to be
    /// unpacked, and fails to stop apt before dpkg runs.
    #[command(after_help = APT_HOOK_HELP)]
    AptHook(HookArgs),
}

const WATCH_HELP: &str = "\
vouch watch joins the vouch network with a fresh libp2p identity (TCP or
QUIC, noise, yamux; gossipsub, identify, ping, Kademlia as a client) through
--bootstrap MULTIADDR or the listen addresses a --node URL gives, and finds
more peers from there (up to --max-peers). It stores nothing and relays
nothing: every message is reported to gossipsub as ignored once read.

Each verdict is decoded and its signature checked; each fork proof is
checked (two verdicts of one signer that conflict). Valid ones are printed
as JSON lines:
  {\"type\": \"verdict\", \"from\": PEER, \"id\", \"verdict\": {...}, \"envelope\": BASE64}
  {\"type\": \"fork\", \"from\": PEER, \"id\", \"signer\", \"seq\", \"verdicts\": [ID, ID], \"proof\": BASE64}
Invalid messages are counted and named on stderr.

--filter KEY=VALUE keeps only what matches: signer=ed25519:..., 
distribution=archlinux, outcome=GOOD|BAD|FAIL (a fork proof matches when
either of its verdicts does). Repeat it: values of one key are alternatives,
different keys must all match.

Exit 0 after --count lines or --timeout seconds (or when interrupted), 3 on
bad input, 4 when no peer answered within 30 s.";

const EXPORT_HELP: &str = "\
Two kinds of export.

--bundle FILE: asks the nodes (one batched lookup each) for the verdicts of
the policy's signers about the artifacts (--installed, --sha256), and the
fork proofs against them, verifies all of it, and writes one canonical CBOR
file (spec/bundle.md). `vouch verify --bundle FILE` and `vouch
check-installed --bundle FILE` then judge from it with no network and give
the same answers.

--format jsonl|csv: streams the verdicts one node holds (every signer, or
--signer ...; issued at or after --since) for analysis, reading each
signer's log in pages; every envelope is verified here and one that does
not verify, or is not the signer's, is left out and counted on stderr.
JSON lines carry the id, the verdict and the envelope (base64); CSV has
one flat row per verdict.

Exit 0 when written, 3 on bad input, 4 when no node could be reached.";

#[derive(Debug, Args)]
pub(crate) struct WatchArgs {
    /// A peer to join through (a multiaddr ending in /p2p/PEER_ID); repeat
    /// for more.
    #[arg(long, value_name = "MULTIADDR")]
    pub(crate) bootstrap: Vec<String>,
    /// Join through the listen addresses of this node (base URL); repeat
    /// for more.
    #[arg(long, value_name = "URL")]
    pub(crate) node: Vec<String>,
    /// Keep only what matches: signer=KEY, distribution=NAME or
    /// outcome=GOOD|BAD|FAIL; repeat for more.
    #[arg(long, value_name = "KEY=VALUE")]
    pub(crate) filter: Vec<String>,
    /// Stop after printing N lines.
    #[arg(long, value_name = "N")]
    pub(crate) count: Option<u64>,
    /// Stop after SECS seconds.
    #[arg(long, value_name = "SECS")]
    pub(crate) timeout: Option<u64>,
    /// Connect to at most this many peers.
    #[arg(long, value_name = "N", default_value_t = 8)]
    pub(crate) max_peers: usize,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub(crate) enum ExportFormat {
    /// One JSON object per line.
    Jsonl,
    /// Comma-separated values with a header row.
    Csv,
}

#[derive(Debug, Args)]
pub(crate) struct ExportArgs {
    /// Write a bundle to FILE.
    #[arg(
        long,
        value_name = "FILE",
        required_unless_present = "format",
        conflicts_with = "format"
    )]
    pub(crate) bundle: Option<PathBuf>,
    /// Stream the verdicts a node holds, in this format.
    #[arg(long, value_enum)]
    pub(crate) format: Option<ExportFormat>,
    /// Bundle: every package installed under --root.
    #[arg(long, conflicts_with = "format")]
    pub(crate) installed: bool,
    /// The root of the system (with --installed).
    #[arg(long, value_name = "DIR", default_value = "/")]
    pub(crate) root: PathBuf,
    /// Bundle: artifacts by sha256; repeat for more.
    #[arg(long, value_name = "HEX", conflicts_with = "format")]
    pub(crate) sha256: Vec<String>,
    /// Stream: only this signer (ed25519:... or hex); repeat for more.
    #[arg(long, value_name = "KEY", requires = "format")]
    pub(crate) signer: Vec<String>,
    /// Stream: only verdicts issued at or after this date (2026-11-01,
    /// 2026-11-01T12:00:00Z) or unix time.
    #[arg(long, value_name = "WHEN", requires = "format")]
    pub(crate) since: Option<String>,
    #[command(flatten)]
    pub(crate) trust: TrustArgs,
    /// Bundle: print a JSON summary.
    #[arg(long)]
    pub(crate) json: bool,
}

const APT_HOOK_HELP: &str = "\
Run by apt as DPkg::Pre-Install-Pkgs with DPkg::Tools::Options::<path>::Version
\"3\". Each .deb apt is about to hand to dpkg is hashed and judged under the
policy (one request per node for all of them); UNKNOWN packages follow
on_unknown; cached verdicts are used when no node answers. Exit 0 lets apt go
on; 1 stops it before dpkg unpacks anything, with each package at fault and
why on stderr.";

const CHECK_INSTALLED_HELP: &str = "\
Debian: packages from var/lib/dpkg/status, their sha256 from the apt lists'
Packages files (plain, gzip, xz or lz4) for the same name, version and
architecture, else by hashing the .deb in var/cache/apt/archives. Arch:
packages from var/lib/pacman/local, their sha256 from the sync databases for
the same version, else by hashing the package file in the cache
(var/cache/pacman/pkg and every CacheDir of etc/pacman.conf). Packages whose
artifact hash cannot be found are reported as such.

Exit codes: 0 every package VERIFIED, 1 some REJECTED, 2 some UNKNOWN (none
rejected), 3 usage or input error, 4 no node could be reached.
With --json prints {\"summary\": {...}, \"packages\": [...], \"nodes\": [...]}.";

const PACMAN_HOOK_HELP: &str = "\
Run by pacman before a transaction (When = PreTransaction, NeedsTargets,
AbortOnFail). For each target it finds the version, file name and sha256 in
the sync databases, hashes the downloaded file in the cache and refuses a
mismatch, then asks the configured nodes (one request each) and applies the
policy; UNKNOWN packages follow on_unknown. When no node answers, verdicts
cached from earlier answers are used (and verified again), and it says so.
Exit 0 lets the transaction go on; 1 stops it, with each package at fault and
why on stderr.";

#[derive(Debug, Subcommand)]
pub(crate) enum ConfigCommand {
    /// Validate the client configuration (errors as FILE:LINE:COL).
    #[command(after_help = "Exit 0 when valid, 3 when not.")]
    Check {
        /// The file (default: the one vouch would read; see --config).
        #[arg(value_name = "FILE")]
        file: Option<PathBuf>,
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
    /// Print a documented example with every key and its default.
    Example,
}

#[derive(Debug, Args)]
pub(crate) struct CheckInstalledArgs {
    /// The root of the system to audit.
    #[arg(long, value_name = "DIR", default_value = "/")]
    pub(crate) root: PathBuf,
    /// Judge from a bundle (`vouch export --bundle`) with no network.
    #[arg(long, value_name = "FILE", conflicts_with = "nodes")]
    pub(crate) bundle: Option<PathBuf>,
    #[command(flatten)]
    pub(crate) trust: TrustArgs,
    /// Print JSON.
    #[arg(long)]
    pub(crate) json: bool,
}

#[derive(Debug, Args)]
pub(crate) struct HookArgs {
    /// The root the package manager installs into (pacman runs hooks
    /// chrooted there; paths apt gives are read under it).
    #[arg(long, value_name = "DIR", default_value = "/")]
    pub(crate) root: PathBuf,
    #[command(flatten)]
    pub(crate) trust: TrustArgs,
}

const QUERY_HELP: &str = "\
Every envelope is verified here; what a node claims about a verdict in its
JSON is compared with the signed envelope, and a node that lies is reported.
Exit 0 when at least one node answered, 4 when none could be reached, 3 on
bad input. With --json prints {\"verdicts\": [{\"id\", \"verdict\", \"nodes\"}],
\"forks\": [...], \"nodes\": [per-node report]}.";

const SIGN_HELP: &str = "\
The JSON holds the verdict's fields as in spec/verdict.md, with digests as hex
and keys as ed25519:<base64>. signer defaults to the key's public key,
version to 1, seq to 0, prev to all-zero, issued_at to now; evidence may be
left out. Example:

  {\"seq\": 0,
   \"subject\": {\"distribution\": \"archlinux\", \"component\": \"core\",
     \"architecture\": \"x86_64\", \"name\": \"pacman\", \"version\": \"5.2.2-1\",
     \"filename\": \"pacman-5.2.2-1-x86_64.pkg.tar.zst\", \"sha256\": \"<64 hex>\"},
   \"inputs\": {\"backend\": \"archlinux-repro\", \"backend_version\": \"20240101\"},
   \"outcome\": {\"result\": \"GOOD\"}}

outcome is {\"result\": \"GOOD\"}, {\"result\": \"BAD\", \"rebuilt_sha256\": \"<hex>\"}
or {\"result\": \"FAIL\", \"reason\": \"fetch\"|\"build\"|\"timeout\"|\"backend\"}.
Exit 0 on success, 3 on bad input.";

const INSPECT_HELP: &str = "\
Exit codes: 0 the signature is valid, 1 it is not (or the keyid is wrong),
3 the file is malformed (not canonical CBOR, unknown fields, too large, ...).
With --json prints {\"valid\": bool, \"id\": hex, \"verdict\": {...}, \"error\":
{\"code\": ..., \"message\": ...}} (verdict absent when the payload does not
decode, error absent when valid).";

const VERIFY_HELP: &str = "\
Hashes FILE (streaming; or takes --sha256), asks every --node in parallel
(each with --timeout), reads the envelopes of the --verdicts files (each one
envelope or a CBOR array of them) and the --forks proofs, verifies every
signature itself, drops what fails, and evaluates the policy. No node is
trusted: a node that serves garbage or tampered envelopes, or times out, is
reported and the others still count.

Exit codes: 0 VERIFIED, 1 REJECTED, 2 UNKNOWN, 3 usage or input error,
4 no node could be reached (and no --verdicts file was given).
With --json prints the decision: status, threshold, configured, good, one
entry per configured signer with its state, reasons, the envelopes that were
dropped, and one report per node.";

/// Whom to trust and whom to ask; what is not given comes from the client
/// configuration.
#[derive(Debug, Args)]
pub(crate) struct TrustArgs {
    /// The trust policy (default: the client configuration's).
    #[arg(long, value_name = "POLICY.toml")]
    pub(crate) policy: Option<PathBuf>,
    /// A node to ask (base URL, e.g. http://127.0.0.1:8484); repeat for
    /// more (default: the configuration's).
    #[arg(long = "node", value_name = "URL")]
    pub(crate) nodes: Vec<String>,
    /// Seconds to wait for each node (default: the configuration's, 10).
    #[arg(long, value_name = "SECS")]
    pub(crate) timeout: Option<u64>,
}

impl TrustArgs {
    /// These flags, completed from the configuration `config` (read only
    /// when something is missing; nodes only when `want_nodes`).
    pub(crate) fn settings(
        &self,
        config: Option<&std::path::Path>,
        want_nodes: bool,
    ) -> anyhow::Result<crate::config::Settings> {
        crate::config::settings(
            config,
            self.policy.as_deref(),
            &self.nodes,
            self.timeout,
            want_nodes,
        )
    }
}

#[derive(Debug, Args)]
pub(crate) struct KeygenArgs {
    /// Where to write the secret key (PATH.pub gets the public key).
    #[arg(long, value_name = "PATH")]
    pub(crate) out: PathBuf,
    /// Print JSON.
    #[arg(long)]
    pub(crate) json: bool,
}

#[derive(Debug, Args)]
pub(crate) struct SignArgs {
    /// The secret key file (mode 0600).
    #[arg(long, value_name = "PATH")]
    pub(crate) key: PathBuf,
    /// The verdict as JSON.
    #[arg(long, value_name = "FILE.json")]
    pub(crate) verdict: PathBuf,
    /// Where to write the envelope.
    #[arg(long, value_name = "FILE.cbor")]
    pub(crate) out: PathBuf,
    /// Also write the in-toto Statement in a DSSE JSON envelope here.
    #[arg(long, value_name = "FILE.json")]
    pub(crate) intoto: Option<PathBuf>,
    /// Print JSON.
    #[arg(long)]
    pub(crate) json: bool,
}

#[derive(Debug, Args)]
pub(crate) struct InspectArgs {
    /// The envelope file.
    #[arg(value_name = "FILE.cbor")]
    pub(crate) file: PathBuf,
    /// Print JSON.
    #[arg(long)]
    pub(crate) json: bool,
}

#[derive(Debug, Subcommand)]
pub(crate) enum PolicyCommand {
    /// Validate a policy file and show what it says.
    #[command(after_help = "Exit 0 when valid, 3 when not (with file, line and reason).")]
    Check {
        /// The policy file (TOML).
        #[arg(value_name = "POLICY.toml")]
        file: PathBuf,
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
}

#[derive(Debug, Args)]
pub(crate) struct VerifyArgs {
    /// The artifact to check (hashed with SHA-256, streaming).
    #[arg(
        value_name = "FILE",
        required_unless_present = "sha256",
        conflicts_with = "sha256"
    )]
    pub(crate) file: Option<PathBuf>,
    /// The artifact's SHA-256 instead of a file.
    #[arg(long, value_name = "HEX")]
    pub(crate) sha256: Option<String>,
    #[command(flatten)]
    pub(crate) trust: TrustArgs,
    /// Files holding envelopes (one, or a CBOR array).
    #[arg(long = "verdicts", value_name = "FILE", num_args = 1..)]
    pub(crate) verdicts: Vec<PathBuf>,
    /// Files holding fork proofs.
    #[arg(long = "forks", value_name = "FILE", num_args = 1..)]
    pub(crate) forks: Vec<PathBuf>,
    /// Judge from a bundle (`vouch export --bundle`) with no network.
    #[arg(long, value_name = "FILE", conflicts_with = "nodes")]
    pub(crate) bundle: Option<PathBuf>,
    /// Print JSON.
    #[arg(long)]
    pub(crate) json: bool,
}

#[derive(Debug, Args)]
pub(crate) struct SubmitArgs {
    /// The node (base URL).
    #[arg(long = "node", value_name = "URL")]
    pub(crate) node: String,
    /// File holding the node's admin token (DATA_DIR/admin-token).
    #[arg(long, value_name = "FILE", env = "VOUCH_ADMIN_TOKEN_FILE")]
    pub(crate) token_file: std::path::PathBuf,
    /// Envelope files (one envelope or a CBOR array each).
    #[arg(value_name = "FILE", required = true)]
    pub(crate) files: Vec<std::path::PathBuf>,
    /// Seconds to wait for the node.
    #[arg(long, value_name = "SECS", default_value_t = 60)]
    pub(crate) timeout: u64,
    /// Print JSON.
    #[arg(long)]
    pub(crate) json: bool,
}

#[derive(Debug, Args)]
pub(crate) struct QueryArgs {
    /// A node to ask (base URL); repeat for more.
    #[arg(long = "node", value_name = "URL", required = true)]
    pub(crate) nodes: Vec<String>,
    /// The artifact's SHA-256.
    #[arg(long, value_name = "HEX", required_unless_present = "name", conflicts_with_all = ["name", "distribution"])]
    pub(crate) sha256: Option<String>,
    /// Distribution (with --name).
    #[arg(
        long,
        value_name = "DIST",
        requires = "name",
        default_value = "archlinux"
    )]
    pub(crate) distribution: String,
    /// Package name.
    #[arg(long, value_name = "NAME")]
    pub(crate) name: Option<String>,
    /// Package version (with --name).
    #[arg(long, value_name = "VERSION", requires = "name")]
    pub(crate) version: Option<String>,
    /// Seconds to wait for each node.
    #[arg(long, value_name = "SECS", default_value_t = 10)]
    pub(crate) timeout: u64,
    /// Print JSON.
    #[arg(long)]
    pub(crate) json: bool,
}
