//! Part files on S3: each part is a multipart upload, invisible until it is completed on
//! commit.

use std::sync::Arc;

use object_store::aws::AmazonS3;
use object_store::multipart::{MultipartStore, PartId};
use object_store::path::Path;
use object_store::{ObjectStore, PutPayload};
use serde::{Deserialize, Serialize};
use tokio::runtime::Runtime;
use weir_checkpoint::StorageOptions;

use crate::{Error, Result};

/// Data is uploaded in parts of this size (S3's minimum for all parts but the last is 5 MiB).
const UPLOAD_PART_BYTES: usize = 8 << 20;

/// The prefix an `s3://bucket/prefix` file sink writes its buckets under.
pub(super) struct S3Dir {
    store: AmazonS3,
    root: Path,
    /// `s3://bucket`, for messages.
    bucket_url: String,
    /// Runs the client's requests on the sink's thread.
    runtime: Arc<Runtime>,
}

/// The multipart upload of a closed part, stored in checkpoints until it is completed.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Upload {
    /// The upload id S3 gave.
    id: String,
    /// The ids (ETags) of the uploaded parts, in order.
    parts: Vec<String>,
}

/// An open part: an upload with the bytes not yet uploaded.
#[derive(Debug)]
pub(super) struct S3Part {
    path: Path,
    id: String,
    parts: Vec<PartId>,
    buffer: Vec<u8>,
}

impl S3Dir {
    /// The client for `url`, with the endpoint and credentials of `options` only.
    pub(super) fn open(url: &str, options: &StorageOptions) -> Result<Self> {
        let (store, root) = weir_checkpoint::s3_client(url, options).map_err(Error::Location)?;
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(|source| Error::Runtime { source })?;
        let bucket = url.trim_start_matches("s3://").split('/').next().unwrap_or_default();
        let bucket_url = format!("s3://{bucket}");
        Ok(S3Dir { store, root, bucket_url, runtime: Arc::new(runtime) })
    }

    fn object(&self, bucket: &str, name: &str) -> Path {
        let root = self.root.parts();
        root.chain(bucket.split('/').filter(|s| !s.is_empty()).map(Into::into))
            .chain(std::iter::once(name.into()))
            .collect()
    }

    fn error(&self, path: &Path) -> impl FnOnce(object_store::Error) -> Error {
        let url = format!("{}/{path}", self.bucket_url);
        move |source| Error::ObjectStore { url, source }
    }

    /// Starts the upload of part `name` of `bucket`.
    pub(super) fn create(&self, bucket: &str, name: &str) -> Result<S3Part> {
        let path = self.object(bucket, name);
        let id =
            self.runtime.block_on(self.store.create_multipart(&path)).map_err(self.error(&path))?;
        Ok(S3Part { path, id, parts: Vec::new(), buffer: Vec::with_capacity(UPLOAD_PART_BYTES) })
    }

    /// Appends `bytes` to `part`, uploading a part whenever enough is buffered.
    pub(super) fn write(&self, part: &mut S3Part, bytes: &[u8]) -> Result<()> {
        part.buffer.extend_from_slice(bytes);
        if part.buffer.len() >= UPLOAD_PART_BYTES {
            self.upload_buffer(part)?;
        }
        Ok(())
    }

    fn upload_buffer(&self, part: &mut S3Part) -> Result<()> {
        let data = PutPayload::from(std::mem::take(&mut part.buffer));
        let upload = self.store.put_part(&part.path, &part.id, part.parts.len(), data);
        let id = self.runtime.block_on(upload).map_err(self.error(&part.path))?;
        part.parts.push(id);
        Ok(())
    }

    /// Uploads the rest of `part`; the upload can then be completed by [`Self::commit`].
    pub(super) fn close(&self, mut part: S3Part) -> Result<Upload> {
        if !part.buffer.is_empty() || part.parts.is_empty() {
            self.upload_buffer(&mut part)?;
        }
        let parts = part.parts.into_iter().map(|part| part.content_id).collect();
        Ok(Upload { id: part.id, parts })
    }

    /// Completes `upload` of part `name` of `bucket`, making the object visible; an upload
    /// already completed is fine.
    pub(super) fn commit(&self, bucket: &str, name: &str, upload: &Upload) -> Result<()> {
        let path = self.object(bucket, name);
        let parts = upload.parts.iter().map(|id| PartId { content_id: id.clone() }).collect();
        let completed =
            self.runtime.block_on(self.store.complete_multipart(&path, &upload.id, parts));
        match completed {
            Ok(_) => Ok(()),
            // Completed before the job was restored: the upload is gone and the object is there.
            Err(error) => match self.runtime.block_on(self.store.head(&path)) {
                Ok(_) => {
                    tracing::debug!(%path, "part already committed");
                    Ok(())
                }
                Err(_) => Err(self.error(&path)(error)),
            },
        }
    }

    /// Aborts `upload` of part `name` of `bucket`; one already gone is fine.
    pub(super) fn discard(&self, bucket: &str, name: &str, upload: &Upload) -> Result<()> {
        self.abort(&self.object(bucket, name), &upload.id)
    }

    /// Aborts the upload of an open part.
    pub(super) fn discard_open(&self, part: S3Part) -> Result<()> {
        self.abort(&part.path, &part.id)
    }

    fn abort(&self, path: &Path, id: &str) -> Result<()> {
        match self.runtime.block_on(self.store.abort_multipart(path, &id.to_string())) {
            Ok(()) | Err(object_store::Error::NotFound { .. }) => Ok(()),
            Err(source) => Err(self.error(path)(source)),
        }
    }
}
