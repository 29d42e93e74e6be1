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
    /// Check an artifact against a trust policy with verdict files.
    #[command(after_help = VERIFY_HELP)]
    Verify(VerifyArgs),
}

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
Hashes FILE (or takes --sha256), verifies every envelope in the --verdicts
files (each one envelope or a CBOR array of them) and every --forks proof,
drops what fails, and evaluates the policy.

Exit codes: 0 VERIFIED, 1 REJECTED, 2 UNKNOWN, 3 usage or input error.
With --json prints the decision: status, threshold, configured, good, one
entry per configured signer with its state, reasons, and the envelopes that
were dropped.";

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
    /// The trust policy.
    #[arg(long, value_name = "POLICY.toml")]
    pub(crate) policy: PathBuf,
    /// Files holding envelopes (one, or a CBOR array).
    #[arg(long = "verdicts", value_name = "FILE", num_args = 1.., required = true)]
    pub(crate) verdicts: Vec<PathBuf>,
    /// Files holding fork proofs.
    #[arg(long = "forks", value_name = "FILE", num_args = 1..)]
    pub(crate) forks: Vec<PathBuf>,
    /// Print JSON.
    #[arg(long)]
    pub(crate) json: bool,
}
