//! rebuilderd's wire format (API v0 and v1 as rebuilderd 0.26–0.28 and
//! its `rebuildctl` speak them), written from the field lists in
//! `spec/rebuilderd-api.md`. Timestamps are rebuilderd's: UTC without a
//! zone suffix.

use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

/// A timestamp as rebuilderd writes it: `2026-01-01T00:00:00`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Naive(pub u64);

impl Serialize for Naive {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&naive(self.0))
    }
}

/// Unix seconds as rebuilderd writes them.
pub fn naive(unix: u64) -> String {
    let t = i64::try_from(unix)
        .ok()
        .and_then(|u| OffsetDateTime::from_unix_timestamp(u).ok())
        .unwrap_or(OffsetDateTime::UNIX_EPOCH);
    format!(
        "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}",
        t.year(),
        u8::from(t.month()),
        t.day(),
        t.hour(),
        t.minute(),
        t.second()
    )
}

/// `{total, records}`.
#[derive(Debug, Serialize)]
pub struct ResultPage<T> {
    /// Rows matching the filters, on every page.
    pub total: u64,
    /// This page.
    pub records: Vec<T>,
}

/// A binary package (`GET /api/v1/packages/binary`).
#[derive(Debug, Serialize)]
pub struct BinaryPackage {
    pub id: u32,
    pub name: String,
    pub version: String,
    pub distribution: String,
    pub release: Option<String>,
    pub component: Option<String>,
    pub architecture: String,
    pub url: String,
    /// `GOOD`, `BAD`, or null (no verdict, or FAIL: the artifact was not
    /// built).
    pub status: Option<&'static str>,
    pub build_id: Option<u32>,
    pub artifact_id: Option<u32>,
    pub diffoscope_log_id: Option<u32>,
    pub attestation_log_id: Option<u32>,
    pub last_seen: Naive,
    pub seen_in_last_sync: bool,
}

/// A build (`GET /api/v1/builds/{id}`).
#[derive(Debug, Serialize)]
pub struct Rebuild {
    pub id: u32,
    pub name: String,
    pub version: String,
    pub distribution: String,
    pub release: Option<String>,
    pub architecture: String,
    pub backend: String,
    pub retries: u32,
    pub started_at: Option<Naive>,
    pub built_at: Option<Naive>,
    pub status: Option<&'static str>,
}

/// An artifact of a build.
#[derive(Debug, Serialize)]
pub struct RebuildArtifact {
    pub id: u32,
    pub name: String,
    pub has_diffoscope: bool,
    pub has_attestation: bool,
    pub status: Option<&'static str>,
}

/// A queued or running job (`GET /api/v1/queue`).
#[derive(Debug, Serialize)]
pub struct QueuedJob {
    pub id: u32,
    pub name: String,
    pub version: String,
    pub distribution: String,
    pub release: Option<String>,
    pub architecture: String,
    pub backend: String,
    pub url: String,
    pub next_retry: Option<Naive>,
    pub priority: i32,
    pub queued_at: Naive,
    pub started_at: Option<Naive>,
}

/// `POST /api/v1/queue`.
#[derive(Debug, Deserialize)]
pub struct QueueJobRequest {
    pub distribution: Option<String>,
    pub release: Option<String>,
    pub component: Option<String>,
    pub name: Option<String>,
    pub version: Option<String>,
    pub architecture: Option<String>,
    pub status: Option<String>,
    pub priority: Option<i32>,
}

/// The answer to `POST /api/v1/queue`.
#[derive(Debug, Serialize)]
pub struct SuccessfullyQueued {
    pub affected: u64,
}

/// A worker (`GET /api/v1/workers`).
#[derive(Debug, Serialize)]
pub struct Worker {
    pub id: u32,
    pub name: String,
    pub address: String,
    pub status: Option<String>,
    pub last_ping: Naive,
    pub is_online: bool,
}

/// `GET /api/v1/dashboard`.
#[derive(Debug, Serialize)]
pub struct DashboardState {
    pub rebuilds: DashboardRebuildState,
    pub jobs: DashboardJobState,
}

#[derive(Debug, Serialize)]
pub struct DashboardRebuildState {
    pub good: u64,
    pub bad: u64,
    pub fail: u64,
    pub unknown: u64,
}

#[derive(Debug, Serialize)]
pub struct DashboardJobState {
    pub running: u64,
    pub available: u64,
    pub pending: u64,
}

/// `GET /api/v1/meta/public-keys`.
#[derive(Debug, Serialize)]
pub struct PublicKeys {
    pub current: Vec<String>,
}

/// One row of `GET /api/v0/pkgs/list`.
#[derive(Debug, Serialize)]
pub struct PkgRelease {
    pub name: String,
    pub version: String,
    /// `GOOD`, `BAD` or `UNKWN`.
    pub status: &'static str,
    pub distro: String,
    pub suite: String,
    pub architecture: String,
    pub artifact_url: String,
    pub build_id: Option<u32>,
    pub built_at: Option<Naive>,
    pub has_diffoscope: bool,
    pub has_attestation: bool,
}

/// `GET /api/v0/dashboard`.
#[derive(Debug, Serialize)]
pub struct DashboardResponse {
    pub suites: std::collections::BTreeMap<String, SuiteStats>,
    pub active_builds: Vec<QueueItem>,
    pub queue_length: u64,
    pub now: Naive,
}

#[derive(Debug, Default, Serialize)]
pub struct SuiteStats {
    pub good: u64,
    pub unknown: u64,
    pub bad: u64,
}

/// A running build in the v0 dashboard.
#[derive(Debug, Serialize)]
pub struct QueueItem {
    pub id: u32,
    pub pkgbase: PkgGroup,
    pub version: String,
    pub queued_at: Naive,
    pub worker_id: Option<u32>,
    pub started_at: Option<Naive>,
    pub last_ping: Option<Naive>,
}

#[derive(Debug, Serialize)]
pub struct PkgGroup {
    pub name: String,
    pub version: String,
    pub distro: String,
    pub suite: String,
    pub architecture: String,
    pub input_url: Option<String>,
    pub artifacts: Vec<PkgArtifact>,
}

#[derive(Debug, Serialize)]
pub struct PkgArtifact {
    pub name: String,
    pub version: String,
    pub url: String,
}

#[cfg(test)]
mod tests {
    use super::naive;

    #[test]
    fn timestamps_have_no_zone_suffix() {
        assert_eq!(naive(0), "1970-01-01T00:00:00");
        assert_eq!(naive(1_767_225_600), "2026-01-01T00:00:00");
        assert_eq!(naive(1_767_225_661), "2026-01-01T00:01:01");
    }
}
