//! The package table behind the rebuilderd-compatible API.
//!
//! rebuilderd's clients name packages, jobs and builds by integers and page
//! by them, so every artifact a sync publishes gets a stable package id,
//! every job a job id, and a verdict shown through that API a verdict
//! number (its build id). Packages are indexed by name and by sha256; a
//! page seeks to where the last one ended, so its cost does not grow with
//! depth.
//!
//! A sync's new jobs get their ids in the batch that queues them; a job
//! without ids (queued by a version before the table existed) gets them at
//! open, from [`Store::register_missing`].

use serde::{Deserialize, Serialize};
use vouch_attest::{Digest, Envelope, OutcomeKind, PublicKey};

use super::standing::{OriginCounts, Own};
use super::{Store, StoreError, damaged, keys};
use crate::sync::Job;

/// One published artifact, as the package table keeps it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PackageRow {
    /// Package id.
    #[serde(skip)]
    pub id: u32,
    /// The id of the job that rebuilds it.
    pub job_id: u32,
    /// The job's key.
    pub job: String,
    /// Distribution.
    pub distribution: String,
    /// Release (Debian).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub release: Option<String>,
    /// Repository (Arch) or component (Debian).
    pub component: String,
    /// Architecture of the index.
    pub architecture: String,
    /// Binary package name.
    pub name: String,
    /// Its version.
    pub version: String,
    /// Source name.
    pub source: String,
    /// Source version.
    pub source_version: String,
    /// Where the mirror serves it.
    pub url: String,
    /// SHA-256 from the index.
    pub sha256: Digest,
}

impl PackageRow {
    /// The origin this row is counted under:
    /// `distribution/release/component/architecture`.
    pub fn origin(&self) -> String {
        crate::sync::origin(
            &self.distribution,
            self.release.as_deref(),
            &self.component,
            &self.architecture,
        )
    }
}

/// A job's ids: its own, and the range of its packages' ids.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct JobIds {
    /// The job id.
    pub id: u32,
    /// Its first package id.
    pub first_package: u32,
    /// How many packages it has.
    pub packages: u32,
}

impl JobIds {
    pub(super) fn encode(&self) -> [u8; 12] {
        let mut v = [0u8; 12];
        v[..4].copy_from_slice(&self.id.to_be_bytes());
        v[4..8].copy_from_slice(&self.first_package.to_be_bytes());
        v[8..].copy_from_slice(&self.packages.to_be_bytes());
        v
    }

    fn decode(v: &[u8]) -> Option<JobIds> {
        Some(JobIds {
            id: u32::from_be_bytes(v.get(..4)?.try_into().ok()?),
            first_package: u32::from_be_bytes(v.get(4..8)?.try_into().ok()?),
            packages: u32::from_be_bytes(v.get(8..12)?.try_into().ok()?),
        })
    }
}

/// A package row as the tree keeps it: which job, and which of its
/// subjects. Everything else is in the job's record, so a row costs 8
/// bytes instead of repeating the job. (Rows written before this are whole
/// packed rows and are still read.)
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct RowRef {
    pub(super) job_id: u32,
    pub(super) index: u32,
}

impl RowRef {
    const LEN: usize = 8;

    pub(super) fn encode(self) -> [u8; Self::LEN] {
        let mut v = [0u8; Self::LEN];
        v[..4].copy_from_slice(&self.job_id.to_be_bytes());
        v[4..].copy_from_slice(&self.index.to_be_bytes());
        v
    }

    fn decode(v: &[u8]) -> Option<RowRef> {
        if v.len() != Self::LEN {
            return None;
        }
        Some(RowRef {
            job_id: u32::from_be_bytes(v[..4].try_into().ok()?),
            index: u32::from_be_bytes(v[4..].try_into().ok()?),
        })
    }
}

/// The row of package `id`: subject `index` of `job`, whose key is `key`
/// and whose id is `job_id`. The one place a row is put together.
fn row_of(id: u32, job_id: u32, key: &str, job: &Job, index: usize) -> Option<PackageRow> {
    let s = job.subjects.get(index)?;
    Some(PackageRow {
        id,
        job_id,
        job: key.to_string(),
        distribution: job.distribution.clone(),
        release: job.release.clone(),
        component: job.component.clone(),
        architecture: job.architecture.clone(),
        name: s.name.clone(),
        version: s.version.clone(),
        source: job.source.clone(),
        source_version: job.version.clone(),
        url: format!("{}/{}", job.mirror.trim_end_matches('/'), s.path),
        sha256: s.sha256,
    })
}

pub(super) fn name_key(name: &str, id: u32) -> Vec<u8> {
    let mut k = Vec::with_capacity(name.len() + 5);
    k.extend_from_slice(name.as_bytes());
    k.push(0);
    k.extend_from_slice(&id.to_be_bytes());
    k
}

pub(super) fn sha_key(sha: &Digest, id: u32) -> [u8; 36] {
    let mut k = [0u8; 36];
    k[..32].copy_from_slice(sha.as_bytes());
    k[32..].copy_from_slice(&id.to_be_bytes());
    k
}

/// A verdict a write appended, as the in-memory counts need it.
#[derive(Debug, Clone)]
pub(crate) struct Appended {
    pub(crate) signer: PublicKey,
    pub(crate) sha256: Digest,
    pub(crate) outcome: OutcomeKind,
    pub(crate) id: Digest,
    pub(crate) issued_at: u64,
    pub(crate) log: Option<Digest>,
    pub(crate) diffoscope: Option<Digest>,
    pub(crate) seq: u64,
    /// `distribution/release/component` of its subject.
    pub(crate) group: String,
    /// For BAD: what the signer rebuilt.
    pub(crate) rebuilt: Option<Digest>,
}

/// Which packages a page walks, and in which order.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Order {
    /// By package id.
    Id,
    /// By name, then id.
    Name,
}

impl Store {
    /// A job's ids.
    pub fn job_ids(&self, key: &str) -> Result<Option<JobIds>, StoreError> {
        self.job_ids
            .get(key.as_bytes())?
            .map(|v| JobIds::decode(&v).ok_or_else(|| damaged(keys::JOB_IDS, "bad job ids")))
            .transpose()
    }

    /// The key of the job with id `id`.
    pub fn job_key(&self, id: u32) -> Result<Option<String>, StoreError> {
        Ok(self
            .jobs_by_id
            .get(id.to_be_bytes())?
            .map(|v| String::from_utf8_lossy(&v).into_owned()))
    }

    /// The package with id `id`.
    pub fn package(&self, id: u32) -> Result<Option<PackageRow>, StoreError> {
        Rows::new(self).get(id)
    }

    /// The packages of the job `key`.
    pub fn job_packages(&self, key: &str) -> Result<Vec<PackageRow>, StoreError> {
        let Some(ids) = self.job_ids(key)? else {
            return Ok(Vec::new());
        };
        let mut rows = Rows::new(self);
        let mut out = Vec::with_capacity(ids.packages as usize);
        for id in ids.first_package..ids.first_package.saturating_add(ids.packages) {
            out.extend(rows.get(id)?);
        }
        Ok(out)
    }

    /// Packages with the sha256 `sha`.
    pub fn packages_with_sha(&self, sha: &Digest) -> Result<Vec<PackageRow>, StoreError> {
        let mut rows = Rows::new(self);
        let mut out = Vec::new();
        for item in self.packages_by_sha.scan_prefix(sha.as_bytes()) {
            let (k, _) = item?;
            let id = k
                .get(32..36)
                .and_then(|b| b.try_into().ok())
                .map(u32::from_be_bytes)
                .ok_or_else(|| damaged(keys::PACKAGES_BY_SHA, "bad key"))?;
            out.extend(rows.get(id)?);
        }
        Ok(out)
    }

    /// Walks packages in `order` after the package `after` (exclusive),
    /// only those named `name` when given, calling `visit` on each until it
    /// returns false. Seeks once, then reads sequentially: the cost of a
    /// page does not depend on how deep it is.
    pub fn walk_packages(
        &self,
        order: Order,
        name: Option<&str>,
        after: Option<u32>,
        mut visit: impl FnMut(PackageRow) -> Result<bool, StoreError>,
    ) -> Result<(), StoreError> {
        use std::ops::Bound;
        let mut rows = Rows::new(self);
        match (order, name) {
            (Order::Id, None) => {
                let lower = match after {
                    Some(a) => Bound::Excluded(a.to_be_bytes().to_vec()),
                    None => Bound::Unbounded,
                };
                for item in self.packages.range::<Vec<u8>, _>((lower, Bound::Unbounded)) {
                    let (k, v) = item?;
                    let id = id_of(&k)?;
                    if !visit(rows.row(id, &v)?)? {
                        break;
                    }
                }
            }
            (_, Some(name)) => {
                // One name: its packages in id order, which is also name
                // order.
                let prefix = name_key(name, 0);
                let prefix = &prefix[..prefix.len() - 4];
                let lower = match after {
                    Some(a) => Bound::Excluded(name_key(name, a)),
                    None => Bound::Included(prefix.to_vec()),
                };
                for item in self
                    .packages_by_name
                    .range::<Vec<u8>, _>((lower, Bound::Unbounded))
                {
                    let (k, _) = item?;
                    if !k.starts_with(prefix) {
                        break;
                    }
                    let id = id_of(&k[k.len() - 4..])?;
                    let Some(row) = rows.get(id)? else {
                        continue;
                    };
                    if !visit(row)? {
                        break;
                    }
                }
            }
            (Order::Name, None) => {
                let lower = match after {
                    Some(a) => match rows.get(a)? {
                        Some(row) => Bound::Excluded(name_key(&row.name, a)),
                        None => Bound::Unbounded,
                    },
                    None => Bound::Unbounded,
                };
                for item in self
                    .packages_by_name
                    .range::<Vec<u8>, _>((lower, Bound::Unbounded))
                {
                    let (k, _) = item?;
                    let id = id_of(&k[k.len().saturating_sub(4)..])?;
                    let Some(row) = rows.get(id)? else {
                        continue;
                    };
                    if !visit(row)? {
                        break;
                    }
                }
            }
        }
        Ok(())
    }

    /// This node's latest verdict about the artifact `sha`, read from the
    /// store (None before [`Store::follow_own`]).
    pub(super) fn own_status(&self, sha: &Digest) -> Result<Option<Own>, StoreError> {
        let Some(own) = self.tally.own() else {
            return Ok(None);
        };
        let Some(bytes) = self.latest(sha, &own)? else {
            return Ok(None);
        };
        let env = Envelope::decode(&bytes).map_err(|e| damaged(keys::ENVELOPES, e.to_string()))?;
        let v = env
            .unverified_verdict()
            .map_err(|e| damaged(keys::ENVELOPES, e.to_string()))?;
        Ok(Some(Own {
            outcome: v.outcome.result(),
            verdict: env.id(),
            issued_at: v.issued_at,
            has_log: v.evidence.build_log.is_some(),
            has_diffoscope: v.evidence.diffoscope.is_some(),
        }))
    }

    /// Names this node's key: from now on its verdicts decide the status
    /// of the packages (the standing is counted once, here).
    pub fn follow_own(&self, key: &PublicKey) -> Result<(), StoreError> {
        self.tally.set_own(*key);
        let standing = self.tally.packages();
        standing.reset();
        let mut rows = Rows::new(self);
        for item in self.packages.iter() {
            let (k, v) = item?;
            let row = rows.row(id_of(&k)?, &v)?;
            let own = match standing.own(&row.sha256) {
                Some(o) => Some(o),
                None => self.own_status(&row.sha256)?,
            };
            standing.added(&row, own);
        }
        Ok(())
    }

    /// After a write committed: moves the standing for this node's new
    /// verdicts.
    pub(crate) fn note_appended(&self, appended: &[Appended]) -> Result<(), StoreError> {
        let Some(own) = self.tally.own() else {
            return Ok(());
        };
        for a in appended.iter().filter(|a| a.signer == own) {
            let rows = self.packages_with_sha(&a.sha256)?;
            self.tally.packages().verdict(
                a.sha256,
                Own {
                    outcome: a.outcome,
                    verdict: a.id,
                    issued_at: a.issued_at,
                    has_log: a.log.is_some(),
                    has_diffoscope: a.diffoscope.is_some(),
                },
                &rows,
            );
        }
        Ok(())
    }

    /// The job `key` left (or came back to) its repository.
    pub(crate) fn note_published(&self, key: &str, published: bool) -> Result<(), StoreError> {
        if let Some(ids) = self.job_ids(key)? {
            let rows = self.job_packages(key)?;
            self.tally.packages().published(ids.id, published, &rows);
        }
        Ok(())
    }

    /// This node's latest verdict about `sha`, from memory.
    pub fn own_verdict(&self, sha: &Digest) -> Option<Own> {
        self.tally.packages().own(sha)
    }

    /// Whether the job `job_id` was in its repository's last sync.
    pub fn job_published(&self, job_id: u32) -> bool {
        self.tally.packages().is_published(job_id)
    }

    /// Up to `limit` queued jobs with ids after `after`, in id order.
    pub fn queued_jobs(
        &self,
        after: u32,
        limit: usize,
    ) -> Result<Vec<(u32, super::jobs::JobRecord)>, StoreError> {
        let mut out = Vec::new();
        for id in self.tally.packages().queued_after(after, limit) {
            if let Some(key) = self.job_key(id)?
                && let Some(r) = self.job(&key)?
            {
                out.push((id, r));
            }
        }
        Ok(out)
    }

    /// How many jobs are queued (by id; the same as the queue counts once
    /// [`Store::follow_own`] ran).
    pub fn queued_total(&self) -> usize {
        self.tally.packages().queued_count()
    }

    /// Package counts per origin.
    pub fn origin_counts(&self) -> std::collections::BTreeMap<String, OriginCounts> {
        self.tally.packages().origins()
    }

    /// Up to `limit` packages whose name starts with `prefix`, in name
    /// order.
    pub fn search_packages(
        &self,
        prefix: &str,
        limit: usize,
    ) -> Result<Vec<PackageRow>, StoreError> {
        let mut rows = Rows::new(self);
        let mut out = Vec::new();
        for item in self.packages_by_name.scan_prefix(prefix.as_bytes()) {
            if out.len() >= limit {
                break;
            }
            let (k, _) = item?;
            let id = id_of(&k[k.len().saturating_sub(4)..])?;
            out.extend(rows.get(id)?);
        }
        Ok(out)
    }

    /// The verdict number of verdict `id`: a small integer, assigned the
    /// first time it is asked for and the same from then on (rebuilderd's
    /// build ids).
    pub fn verdict_number(&self, id: &Digest) -> Result<u32, StoreError> {
        if let Some(v) = self.numbers.get(id.as_bytes())? {
            return id_of(&v);
        }
        self.db.transaction(|t| {
            let (meta, numbers, numbered) =
                (t.on(&self.meta), t.on(&self.numbers), t.on(&self.numbered));
            if let Some(v) = numbers.get(id.as_bytes())? {
                return id_of(&v);
            }
            let n = super::register::next_id(&meta, keys::META_NEXT_NUMBER, 1)?;
            numbers.insert(id.as_bytes(), &n.to_be_bytes()[..])?;
            numbered.insert(&n.to_be_bytes()[..], id.as_bytes())?;
            Ok(n)
        })
    }

    /// The verdict with number `n`.
    pub fn numbered_verdict(&self, n: u32) -> Result<Option<Digest>, StoreError> {
        match self.numbered.get(n.to_be_bytes())? {
            Some(v) => {
                Ok(Some(Digest(keys::id32(&v).ok_or_else(|| {
                    damaged(keys::NUMBERED, "bad verdict id")
                })?)))
            }
            None => Ok(None),
        }
    }
}

fn id_of(k: &[u8]) -> Result<u32, StoreError> {
    k.try_into()
        .map(u32::from_be_bytes)
        .map_err(|_| damaged(keys::PACKAGES, "bad id"))
}

/// Reads package rows, keeping the last job read: a job's rows are
/// adjacent in id order, so a walk reads each job once.
struct Rows<'s> {
    store: &'s Store,
    last: Option<(u32, String, Job)>,
}

impl<'s> Rows<'s> {
    fn new(store: &'s Store) -> Rows<'s> {
        Rows { store, last: None }
    }

    /// The package `id`, if the tree has it.
    fn get(&mut self, id: u32) -> Result<Option<PackageRow>, StoreError> {
        match self.store.packages.get(id.to_be_bytes())? {
            Some(v) => self.row(id, &v).map(Some),
            None => Ok(None),
        }
    }

    /// The package `id` from its stored value `v`: a reference into its
    /// job's record, or (written by older versions) a whole packed row.
    fn row(&mut self, id: u32, v: &[u8]) -> Result<PackageRow, StoreError> {
        let Some(at) = RowRef::decode(v) else {
            let mut row: PackageRow = super::packed::decode(v, keys::PACKAGES)?;
            row.id = id;
            return Ok(row);
        };
        let (key, job) = match self.last.take() {
            Some((job_id, key, job)) if job_id == at.job_id => (key, job),
            _ => {
                let missing = || {
                    damaged(
                        keys::PACKAGES,
                        format!("package {id}: job {} is missing", at.job_id),
                    )
                };
                let key = self.store.job_key(at.job_id)?.ok_or_else(missing)?;
                let record = self.store.job(&key)?.ok_or_else(missing)?;
                (key, record.job)
            }
        };
        let row = row_of(id, at.job_id, &key, &job, at.index as usize);
        self.last = Some((at.job_id, key, job));
        row.ok_or_else(|| {
            damaged(
                keys::PACKAGES,
                format!(
                    "package {id}: job {} has no subject {}",
                    at.job_id, at.index
                ),
            )
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn job() -> Job {
        Job::debian_hello(&["hello", "hello-dbgsym"])
    }

    #[test]
    fn rows_are_stored_as_references_and_whole_rows_still_read() {
        let store = Store::temporary().unwrap();
        let job = job();
        store
            .enqueue_sync(
                &["debian/bookworm/main/amd64/".into()],
                std::slice::from_ref(&job),
                1,
            )
            .unwrap();
        let rows = store.job_packages(&job.key()).unwrap();
        assert_eq!(rows.len(), 2);
        assert_eq!(rows[1].name, "hello-dbgsym");
        assert_eq!(
            rows[0].url,
            "http://deb.debian.org/debian/pool/main/h/hello/hello_2.10-3_amd64.deb"
        );
        assert_eq!(rows[0].job, job.key());
        for row in &rows {
            let v = store.packages.get(row.id.to_be_bytes()).unwrap().unwrap();
            assert_eq!(v.len(), RowRef::LEN, "a reference, not a copy of the job");
        }
        assert_eq!(
            store.packages_with_sha(&rows[1].sha256).unwrap(),
            vec![rows[1].clone()]
        );

        // A row as versions before wrote it: the whole row, packed.
        let old = super::super::packed::encode(&rows[1], keys::PACKAGES).unwrap();
        store
            .packages
            .insert(rows[1].id.to_be_bytes(), old)
            .unwrap();
        assert_eq!(store.package(rows[1].id).unwrap().as_ref(), Some(&rows[1]));
        assert_eq!(store.job_packages(&job.key()).unwrap(), rows);

        // A reference to a job that is not there is damage, named.
        let dangling = RowRef {
            job_id: 999,
            index: 0,
        }
        .encode();
        store
            .packages
            .insert(rows[0].id.to_be_bytes(), dangling)
            .unwrap();
        let err = store.package(rows[0].id).unwrap_err().to_string();
        assert!(err.contains("job 999 is missing"), "{err}");
    }
}
