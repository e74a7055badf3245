//! An exactly-once sink writing records as rows of bucketed, rolling part files on a local
//! file system or S3, as Flink's `FileSink` with a row format.

mod bucket;
mod local;
mod rolling;
mod s3;
#[cfg(test)]
mod tests;

use std::collections::HashMap;
use std::fmt::Display;
use std::hash::{BuildHasher, Hasher, RandomState};
use std::io::Write as _;
use std::path::PathBuf;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use serde::{Deserialize, Serialize};
pub use weir_checkpoint::StorageOptions;
use weir_operators::SubtaskInfo;
use weir_operators::builtin::TwoPhaseCommitSink;
use weir_operators::function::FnResult;
use weir_types::Timestamp;

pub use bucket::{BucketAssigner, BucketClock, DateField};
use local::{LocalDir, LocalPart};
pub use rolling::RollingPolicy;
pub use s3::Upload;
use s3::{S3Dir, S3Part};

use crate::{Error, Result};

/// Writes each record as one row (a line of text or of JSON) into part files that become
/// visible only when their transaction commits; run it with
/// [`weir_operators::builtin::TwoPhaseCommitSinkOperator`] (`sink_to_two_phase`) for
/// exactly-once output.
///
/// **Where.** The location is a directory: a path, a `file:///abs/dir` URL or an
/// `s3://bucket/prefix` URL, for which [`Self::with_storage_options`] must give an endpoint or
/// credentials (nothing is taken from ambient AWS configuration). Each record goes to the
/// bucket (sub-directory) its [`BucketAssigner`] names.
///
/// **Parts.** A subtask writes at most one open part per bucket, named as by Flink's
/// `FileSink`: `part-{run}-{subtask}-{n}`, where `run` is random hex chosen when the sink
/// opens (so names never collide across restarts or parallelism changes) and `n` counts the
/// subtask's parts. The [`RollingPolicy`] closes a part when it grows past its size, gets too
/// old or sees no writes for a while (checked on writes, every bucket check interval), and
/// every open part is closed at each checkpoint, so each part belongs to one transaction.
///
/// **Commit.** Locally a part is written as the hidden `.{name}.inprogress`, flushed to disk
/// and renamed to the hidden `.{name}.pending` when it closes, and renamed to `{name}` when
/// its checkpoint completes. On S3 a part is a multipart upload (parts of 8 MiB), its last
/// part uploaded when it closes and the upload completed when its checkpoint completes:
/// nothing is visible before. Readers must skip names starting with `.` or `_`, as
/// [`crate::TextFileSource`] does. After a failure, the parts of checkpointed transactions
/// are committed and those written since are deleted (locally; on S3 their uploads are
/// never completed, and a bucket lifecycle rule for incomplete multipart uploads removes
/// them), so every row is visible exactly once.
pub struct FileSink<T> {
    location: PathBuf,
    options: StorageOptions,
    encode: fn(&T, &mut Vec<u8>) -> Result<()>,
    buckets: BucketAssigner<T>,
    rolling: RollingPolicy,
    check_interval: Duration,
    /// Where parts go; set in `open`.
    target: Option<Target>,
    /// `part-{run}-{subtask}`, set in `open`.
    prefix: String,
    /// The `n` of the next part.
    next_part: u64,
    /// The open parts of the current transaction, by bucket.
    open: HashMap<String, OpenPart>,
    /// The encoded record being written.
    row: Vec<u8>,
    /// When the open parts were last checked against the rolling policy's intervals.
    last_check: Instant,
}

/// A transaction of [`FileSink`]: the parts closed in one checkpoint interval.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct FileTransaction {
    /// `part-{run}-{subtask}` of the sink that began it.
    prefix: String,
    /// The `n` of its first part: its parts and those of later transactions of the same
    /// sink have `n` from here on.
    first_part: u64,
    /// Its closed parts.
    parts: Vec<PendingPart>,
}

/// A closed part, waiting for its transaction to commit.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct PendingPart {
    /// Its bucket.
    bucket: String,
    /// Its file name.
    name: String,
    /// Its upload, on S3.
    upload: Option<Upload>,
}

/// Where the parts of a sink go.
enum Target {
    Local(LocalDir),
    S3(S3Dir),
}

/// An open part of a bucket.
struct OpenPart {
    name: String,
    created: Instant,
    last_write: Instant,
    size: u64,
    writer: Writer,
}

enum Writer {
    Local(LocalPart),
    S3(S3Part),
}

impl<T: Display> FileSink<T> {
    /// A sink writing each record with `Display` as a line of text into `location`.
    pub fn text_lines(location: impl Into<PathBuf>) -> Self {
        FileSink::with_encoder(location.into(), |value, row| {
            writeln!(row, "{value}").expect("writes to a Vec");
            Ok(())
        })
    }
}

impl<T: Serialize> FileSink<T> {
    /// A sink writing each record as a line of JSON into `location`.
    pub fn json_lines(location: impl Into<PathBuf>) -> Self {
        FileSink::with_encoder(location.into(), |value, row| {
            serde_json::to_writer(&mut *row, value).map_err(|source| Error::Encode { source })?;
            row.push(b'\n');
            Ok(())
        })
    }
}

impl<T> FileSink<T> {
    fn with_encoder(location: PathBuf, encode: fn(&T, &mut Vec<u8>) -> Result<()>) -> Self {
        FileSink {
            location,
            options: StorageOptions::default(),
            encode,
            buckets: BucketAssigner::Base,
            rolling: RollingPolicy::default(),
            check_interval: Duration::from_secs(1),
            target: None,
            prefix: String::new(),
            next_part: 0,
            open: HashMap::new(),
            row: Vec::new(),
            last_check: Instant::now(),
        }
    }

    /// Puts records into the buckets `buckets` names (default: all in the location).
    pub fn with_bucket_assigner(mut self, buckets: BucketAssigner<T>) -> Self {
        self.buckets = buckets;
        self
    }

    /// Rolls parts as `rolling` says (default: [`RollingPolicy::default`]).
    pub fn with_rolling_policy(mut self, rolling: RollingPolicy) -> Self {
        self.rolling = rolling;
        self
    }

    /// How often, at most, writes check the open parts against the rolling policy's
    /// rollover and inactivity intervals (Flink's bucket check interval). Default 1 s.
    pub fn with_bucket_check_interval(mut self, interval: Duration) -> Self {
        self.check_interval = interval;
        self
    }

    /// The endpoint and credentials of an `s3://` location.
    pub fn with_storage_options(mut self, options: StorageOptions) -> Self {
        self.options = options;
        self
    }

    fn target(&self) -> &Target {
        self.target.as_ref().expect("FileSink used before open")
    }

    /// Opens a new part in `bucket`.
    fn open_part(&mut self, bucket: &str, now: Instant) -> Result<OpenPart> {
        let name = format!("{}-{}", self.prefix, self.next_part);
        self.next_part += 1;
        let writer = match self.target() {
            Target::Local(dir) => Writer::Local(dir.create(bucket, &name)?),
            Target::S3(dir) => Writer::S3(dir.create(bucket, &name)?),
        };
        Ok(OpenPart { name, created: now, last_write: now, size: 0, writer })
    }

    /// Closes the open part of `bucket` into `txn`.
    fn close_part(&self, txn: &mut FileTransaction, bucket: String, part: OpenPart) -> Result<()> {
        let upload = match (self.target(), part.writer) {
            (Target::Local(dir), Writer::Local(writer)) => {
                dir.close(&bucket, &part.name, writer)?;
                None
            }
            (Target::S3(dir), Writer::S3(writer)) => Some(dir.close(writer)?),
            _ => unreachable!("a part is written where its sink writes"),
        };
        tracing::debug!(bucket, name = part.name, size = part.size, "part closed");
        txn.parts.push(PendingPart { bucket, name: part.name, upload });
        Ok(())
    }

    /// Closes the open parts that `roll` selects into `txn`.
    fn close_where(
        &mut self,
        txn: &mut FileTransaction,
        roll: impl Fn(&OpenPart) -> bool,
    ) -> Result<()> {
        let due: Vec<String> = self
            .open
            .iter()
            .filter(|(_, part)| roll(part))
            .map(|(bucket, _)| bucket.clone())
            .collect();
        for bucket in due {
            let part = self.open.remove(&bucket).expect("listed above");
            self.close_part(txn, bucket, part)?;
        }
        Ok(())
    }
}

impl<T> Clone for FileSink<T> {
    /// Clones the configuration; the clone has no open part.
    fn clone(&self) -> Self {
        FileSink {
            options: self.options.clone(),
            buckets: self.buckets.clone(),
            rolling: self.rolling,
            check_interval: self.check_interval,
            ..FileSink::with_encoder(self.location.clone(), self.encode)
        }
    }
}

impl<T> std::fmt::Debug for FileSink<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FileSink")
            .field("location", &self.location)
            .field("buckets", &self.buckets)
            .field("rolling", &self.rolling)
            .finish_non_exhaustive()
    }
}

/// Random hex telling this run of a subtask from every other: hashes the time and process
/// id with the standard library's randomly keyed hasher.
fn random_run_id() -> String {
    let mut hasher = RandomState::new().build_hasher();
    hasher.write_u128(SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_nanos()));
    hasher.write_u32(std::process::id());
    format!("{:016x}", hasher.finish())
}

/// Opens the directory or S3 prefix `location` names.
fn open_target(location: &std::path::Path, options: &StorageOptions) -> Result<Target> {
    let text = location.to_str().unwrap_or_default();
    if text.starts_with("s3://") {
        return Ok(Target::S3(S3Dir::open(text, options)?));
    }
    let dir = match text.strip_prefix("file://") {
        Some(_) => {
            url::Url::parse(text).ok().and_then(|url| url.to_file_path().ok()).ok_or_else(|| {
                Error::FileSinkConfig(format!(
                    "'{text}' is not a file URL with an absolute path, like file:///var/out"
                ))
            })?
        }
        None if text.contains("://") => {
            return Err(Error::FileSinkConfig(format!(
                "unsupported location '{text}': use a path, file:// or s3://"
            )));
        }
        None => location.to_path_buf(),
    };
    Ok(Target::Local(LocalDir::open(dir)?))
}

impl<T: Send> TwoPhaseCommitSink<T> for FileSink<T> {
    type Transaction = FileTransaction;

    fn open(&mut self, info: &SubtaskInfo) -> FnResult {
        self.target = Some(open_target(&self.location, &self.options)?);
        self.prefix = format!("part-{}-{}", random_run_id(), info.index);
        tracing::debug!(location = %self.location.display(), prefix = self.prefix, "file sink opened");
        Ok(())
    }

    fn begin_transaction(&mut self) -> FnResult<FileTransaction> {
        Ok(FileTransaction {
            prefix: self.prefix.clone(),
            first_part: self.next_part,
            parts: Vec::new(),
        })
    }

    fn write(
        &mut self,
        txn: &mut FileTransaction,
        value: T,
        timestamp: Option<Timestamp>,
    ) -> FnResult {
        let now = Instant::now();
        if now.duration_since(self.last_check) >= self.check_interval {
            self.last_check = now;
            let rolling = self.rolling;
            self.close_where(txn, |part| {
                rolling.should_roll_on_time(part.created, part.last_write, now)
            })?;
        }
        let bucket = self.buckets.bucket(&value, timestamp)?;
        self.row.clear();
        (self.encode)(&value, &mut self.row)?;
        if let Some(part) = self.open.get(&bucket)
            && self.rolling.should_roll_on_event(part.size)
        {
            let part = self.open.remove(&bucket).expect("found above");
            self.close_part(txn, bucket.clone(), part)?;
        }
        if !self.open.contains_key(&bucket) {
            let part = self.open_part(&bucket, now)?;
            self.open.insert(bucket.clone(), part);
        }
        let part = self.open.get_mut(&bucket).expect("opened above");
        match (self.target.as_ref().expect("opened"), &mut part.writer) {
            (Target::Local(_), Writer::Local(writer)) => writer.write(&self.row)?,
            (Target::S3(dir), Writer::S3(writer)) => dir.write(writer, &self.row)?,
            _ => unreachable!("a part is written where its sink writes"),
        }
        part.size += self.row.len() as u64;
        part.last_write = now;
        Ok(())
    }

    fn pre_commit(&mut self, txn: &mut FileTransaction) -> FnResult {
        self.close_where(txn, |_| true)?;
        Ok(())
    }

    fn commit(&mut self, txn: FileTransaction) -> FnResult {
        for part in &txn.parts {
            match (self.target(), &part.upload) {
                (Target::Local(dir), _) => dir.commit(&part.bucket, &part.name)?,
                (Target::S3(dir), Some(upload)) => dir.commit(&part.bucket, &part.name, upload)?,
                (Target::S3(_), None) => {
                    return Err(Error::FileSinkConfig(format!(
                        "part {} was written locally but the sink now writes to S3",
                        part.name
                    ))
                    .into());
                }
            }
        }
        tracing::debug!(parts = txn.parts.len(), "file transaction committed");
        Ok(())
    }

    fn abort(&mut self, txn: FileTransaction) -> FnResult {
        // Open parts belong to the current transaction, the only one that can be open.
        if txn.prefix == self.prefix {
            for (_, part) in self.open.drain() {
                if let (Some(Target::S3(dir)), Writer::S3(writer)) = (&self.target, part.writer) {
                    dir.discard_open(writer)?;
                }
            }
        }
        match self.target() {
            // Parts rolled after the transaction was stored are found by their names.
            Target::Local(dir) => dir.discard_from(&txn.prefix, txn.first_part)?,
            Target::S3(dir) => {
                for part in &txn.parts {
                    if let Some(upload) = &part.upload {
                        dir.discard(&part.bucket, &part.name, upload)?;
                    }
                }
            }
        }
        tracing::debug!(
            prefix = txn.prefix,
            first_part = txn.first_part,
            "file transaction aborted"
        );
        Ok(())
    }
}
