//! Where a storage URL points: the object store behind it, a folder inside that store and the
//! URL for messages, with the file operations every folder of the layout shares.

use std::fmt;
use std::ops::Range;
use std::path::PathBuf;
use std::sync::Arc;

use bytes::Bytes;
use futures::{StreamExt, TryStreamExt};
use object_store::aws::{AmazonS3, AmazonS3Builder};
use object_store::local::LocalFileSystem;
use object_store::path::Path;
use object_store::{ObjectStore, PutPayload, WriteMultipart};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use url::Url;

use super::StorageOptions;
use crate::{Error, Result};

/// Files up to this size are written in one request; larger ones in parts of this size.
const PART_BYTES: usize = 8 << 20;

/// Parts of one file uploaded at the same time.
const PARTS_IN_FLIGHT: usize = 4;

const NO_S3_CONFIG: &str = "no S3 endpoint or credentials are configured: set AWS_ENDPOINT (or \
    AWS_ENDPOINT_URL) to an S3-compatible server and/or AWS_ACCESS_KEY_ID and \
    AWS_SECRET_ACCESS_KEY (and AWS_REGION), or the same fields of StorageOptions; credentials \
    from the cloud instance metadata service are never used";

const PARTIAL_S3_CREDENTIALS: &str =
    "AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY must be set together";

/// A folder in an object store.
#[derive(Clone)]
pub(crate) struct Location {
    store: Arc<dyn ObjectStore>,
    path: Path,
    url: String,
}

impl Location {
    /// The folder a user-given URL names: `file:///abs/dir`, a plain filesystem path (relative
    /// to the current directory) or `s3://bucket/prefix`. A local folder is created if missing.
    pub(crate) fn parse(url: &str, options: &StorageOptions) -> Result<Self> {
        if !url.contains("://") {
            return Self::local(PathBuf::from(url), url);
        }
        let parsed = Url::parse(url).map_err(|error| invalid_url(url, error.to_string()))?;
        match parsed.scheme() {
            "file" => {
                let path = parsed.to_file_path().map_err(|()| {
                    invalid_url(url, "a file URL needs an absolute path, like file:///var/weir")
                })?;
                Self::local(path, url)
            }
            "s3" => Self::s3(&parsed, url, options),
            scheme => Err(invalid_url(
                url,
                format!("unsupported scheme '{scheme}': use file:// or s3://"),
            )),
        }
    }

    fn local(dir: PathBuf, url: &str) -> Result<Self> {
        let create_error = |source| Error::CreateDir { path: dir.clone(), source };
        std::fs::create_dir_all(&dir).map_err(create_error)?;
        let dir = dir.canonicalize().map_err(create_error)?;
        let url = Url::from_file_path(&dir)
            .map_err(|()| invalid_url(url, "not an absolute path"))?
            .to_string();
        let store = LocalFileSystem::new_with_prefix(&dir)
            .map_err(|source| Error::Store { url: url.clone(), source })?
            .with_automatic_cleanup(true);
        Ok(Self { store: Arc::new(store), path: Path::default(), url })
    }

    fn s3(parsed: &Url, url: &str, options: &StorageOptions) -> Result<Self> {
        let (store, path) = s3_store(parsed, url, options)?;
        let bucket = parsed.host_str().unwrap_or_default();
        let url = Self::join_url(&format!("s3://{bucket}"), path.as_ref());
        Ok(Self { store: Arc::new(store), path, url })
    }

    /// A location at the root of `store`, for tests that wrap a store.
    #[cfg(test)]
    pub(crate) fn with_store(store: Arc<dyn ObjectStore>, url: &str) -> Self {
        Self { store, path: Path::default(), url: url.to_owned() }
    }

    fn join_url(base: &str, relative: &str) -> String {
        match relative.is_empty() {
            true => base.to_owned(),
            false => format!("{}/{relative}", base.trim_end_matches('/')),
        }
    }

    /// The folder's URL.
    pub(crate) fn url(&self) -> &str {
        &self.url
    }

    /// The sub-folder `segment`, which the caller has checked with [`checked_segment`].
    pub(crate) fn child(&self, segment: &str) -> Self {
        Self {
            store: Arc::clone(&self.store),
            path: self.path.child(segment),
            url: Self::join_url(&self.url, segment),
        }
    }

    /// The folder that holds this one (this one when it is the root of its store and not a
    /// local folder, whose parent is the root of another store).
    pub(crate) fn parent(&self) -> Self {
        let mut parts: Vec<_> = self.path.parts().collect();
        if parts.pop().is_none() {
            return self.local_parent().unwrap_or_else(|| self.clone());
        }
        let url = self.url.trim_end_matches('/');
        let url = url.rsplit_once('/').map_or(url, |(parent, _)| parent);
        Self {
            store: Arc::clone(&self.store),
            path: parts.into_iter().collect(),
            url: url.to_owned(),
        }
    }

    /// The folder holding a local folder opened by its own URL (a restore from a path).
    fn local_parent(&self) -> Option<Self> {
        let path = local_path(&self.url)?;
        let parent = path.parent()?;
        Self::local(parent.to_path_buf(), &parent.display().to_string()).ok()
    }

    /// The URL of `file` in this folder.
    pub(crate) fn url_of(&self, file: &str) -> String {
        Self::join_url(&self.url, file)
    }

    fn store_error(&self, file: &str) -> impl FnOnce(object_store::Error) -> Error {
        let url = self.url_of(file);
        move |source| Error::Store { url, source }
    }

    /// The object path of `file`, a relative path like `op/3.state`.
    fn object(&self, file: &str) -> Result<Path> {
        let invalid = |reason: String| Error::InvalidPath { url: self.url_of(file), reason };
        let relative = Path::parse(file).map_err(|error| invalid(error.to_string()))?;
        if relative.as_ref().is_empty() {
            return Err(invalid("empty file name".to_owned()));
        }
        Ok(self.path.parts().chain(relative.parts()).collect())
    }

    /// Writes `file`, replacing it; returns its size.
    pub(crate) async fn put(&self, file: &str, bytes: PutPayload) -> Result<u64> {
        let size = bytes.content_length() as u64;
        let object = self.object(file)?;
        self.store.put(&object, bytes).await.map_err(self.store_error(file))?;
        tracing::debug!(url = self.url_of(file), size, "wrote");
        Ok(size)
    }

    /// Writes `file` from the local file `source`, replacing it; returns its size. `source` is
    /// never changed in place (a file of a native checkpoint), so on the local filesystem
    /// `file` becomes a hard link to it when both are on one device; otherwise small files
    /// go in one request and large ones are streamed in parts (a multipart upload on S3).
    pub(crate) async fn put_local(&self, file: &str, source: &std::path::Path) -> Result<u64> {
        let local_error = |source_error| Error::LocalFile {
            operation: "read",
            path: source.to_path_buf(),
            source: source_error,
        };
        let mut reader = tokio::fs::File::open(source).await.map_err(local_error)?;
        let size = reader.metadata().await.map_err(local_error)?.len();
        if let Some(target) = local_path(&self.url_of(file))
            && link_replacing(source, &target).await
        {
            tracing::debug!(url = self.url_of(file), size, "linked");
            return Ok(size);
        }
        if size <= PART_BYTES as u64 {
            let bytes = tokio::fs::read(source).await.map_err(local_error)?;
            return self.put(file, bytes.into()).await;
        }
        let object = self.object(file)?;
        let upload = self.store.put_multipart(&object).await.map_err(self.store_error(file))?;
        let mut writer = WriteMultipart::new_with_chunk_size(upload, PART_BYTES);
        let mut buffer = vec![0; PART_BYTES];
        let streamed: Result<()> = async {
            loop {
                let read = reader.read(&mut buffer).await.map_err(local_error)?;
                if read == 0 {
                    return Ok(());
                }
                writer.wait_for_capacity(PARTS_IN_FLIGHT).await.map_err(self.store_error(file))?;
                writer.write(&buffer[..read]);
            }
        }
        .await;
        match streamed {
            Ok(()) => drop(writer.finish().await.map_err(self.store_error(file))?),
            Err(error) => {
                let _ = writer.abort().await;
                return Err(error);
            }
        }
        tracing::debug!(url = self.url_of(file), size, "wrote in parts");
        Ok(size)
    }

    /// Copies `file` of `source` to the same relative path here: inside the store when both
    /// folders are in one, else read and written again.
    pub(crate) async fn copy_from(&self, source: &Location, file: &str) -> Result<()> {
        if Arc::ptr_eq(&self.store, &source.store) {
            let (from, to) = (source.object(file)?, self.object(file)?);
            return self.store.copy(&from, &to).await.map_err(self.store_error(file));
        }
        self.put(file, source.read(file).await?.into()).await.map(drop)
    }

    /// Copies `file` into the local file `target`, streaming; returns its size.
    pub(crate) async fn get_local(&self, file: &str, target: &std::path::Path) -> Result<u64> {
        let local_error =
            |source| Error::LocalFile { operation: "write", path: target.to_path_buf(), source };
        let object = self.object(file)?;
        let result = self.store.get(&object).await.map_err(self.store_error(file))?;
        let mut chunks = result.into_stream();
        let mut writer = tokio::fs::File::create(target).await.map_err(local_error)?;
        let mut size = 0;
        while let Some(chunk) = chunks.next().await {
            let chunk = chunk.map_err(self.store_error(file))?;
            writer.write_all(&chunk).await.map_err(local_error)?;
            size += chunk.len() as u64;
        }
        writer.flush().await.map_err(local_error)?;
        Ok(size)
    }

    /// Makes the local file `target` a hard link to `file` when this folder is on the local
    /// filesystem (same device), else copies it as [`Self::get_local`]; returns its size. Only
    /// for files never changed in place once written (those of native checkpoints), and
    /// targets only read: the link shares their bytes with storage.
    pub(crate) async fn link_local(&self, file: &str, target: &std::path::Path) -> Result<u64> {
        if let Some(source) = local_path(&self.url_of(file))
            && tokio::fs::hard_link(&source, target).await.is_ok()
        {
            let metadata = tokio::fs::metadata(target).await.map_err(|source| {
                Error::LocalFile { operation: "read", path: target.to_path_buf(), source }
            })?;
            return Ok(metadata.len());
        }
        self.get_local(file, target).await
    }

    /// The content of `file`.
    pub(crate) async fn read(&self, file: &str) -> Result<Bytes> {
        let object = self.object(file)?;
        let result = self.store.get(&object).await.map_err(self.store_error(file))?;
        result.bytes().await.map_err(self.store_error(file))
    }

    /// Byte ranges of `file`.
    pub(crate) async fn read_ranges(
        &self,
        file: &str,
        ranges: &[Range<u64>],
    ) -> Result<Vec<Bytes>> {
        let object = self.object(file)?;
        self.store.get_ranges(&object, ranges).await.map_err(self.store_error(file))
    }

    /// Whether `file` exists.
    pub(crate) async fn exists(&self, file: &str) -> Result<bool> {
        match self.store.head(&self.object(file)?).await {
            Ok(_) => Ok(true),
            Err(object_store::Error::NotFound { .. }) => Ok(false),
            Err(source) => Err(self.store_error(file)(source)),
        }
    }

    /// Deletes `file` if it exists.
    pub(crate) async fn delete_file(&self, file: &str) -> Result<()> {
        match self.store.delete(&self.object(file)?).await {
            Ok(()) | Err(object_store::Error::NotFound { .. }) => Ok(()),
            Err(source) => Err(self.store_error(file)(source)),
        }
    }

    /// Names of the folders directly in this one (empty when it does not exist).
    pub(crate) async fn sub_folders(&self) -> Result<Vec<String>> {
        let listing =
            self.store.list_with_delimiter(Some(&self.path)).await.map_err(self.store_error(""))?;
        Ok(listing
            .common_prefixes
            .iter()
            .filter_map(|prefix| prefix.filename().map(str::to_owned))
            .collect())
    }

    /// Every file under this folder, as paths relative to it (empty when it does not exist).
    pub(crate) async fn files(&self) -> Result<Vec<String>> {
        self.store
            .list(Some(&self.path))
            .map_ok(|meta| {
                let relative = meta.location.prefix_match(&self.path).into_iter().flatten();
                relative.map(|part| part.as_ref().to_owned()).collect::<Vec<_>>().join("/")
            })
            .try_collect()
            .await
            .map_err(self.store_error(""))
    }

    /// Deletes `files` (relative paths, as [`Location::files`] gives them), skipping those
    /// already gone; returns how many it deleted.
    pub(crate) async fn delete_files(&self, files: &[String]) -> Result<usize> {
        let objects: Vec<Path> =
            files.iter().map(|file| self.object(file)).collect::<Result<_>>()?;
        let mut results = self.store.delete_stream(futures::stream::iter(objects).map(Ok).boxed());
        let mut deleted = 0;
        while let Some(result) = results.next().await {
            match result {
                Ok(_) => deleted += 1,
                Err(object_store::Error::NotFound { .. }) => {}
                Err(source) => return Err(self.store_error("")(source)),
            }
        }
        Ok(deleted)
    }
}

/// Shows the URL and the store, never credentials.
impl fmt::Debug for Location {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Location")
            .field("url", &self.url)
            .field("store", &self.store.to_string())
            .finish()
    }
}

/// The S3 client for the bucket of `s3://bucket/prefix` (`parsed`, given as `url`) and the
/// object path of `prefix`, with the endpoint and credentials of `options` only.
pub(crate) fn s3_store(
    parsed: &Url,
    url: &str,
    options: &StorageOptions,
) -> Result<(AmazonS3, Path)> {
    let bucket = parsed
        .host_str()
        .filter(|bucket| !bucket.is_empty())
        .ok_or_else(|| invalid_url(url, "an s3 URL needs a bucket: s3://bucket/prefix"))?;
    let path =
        Path::from_url_path(parsed.path()).map_err(|error| invalid_url(url, error.to_string()))?;
    let not_configured = |reason| Error::S3NotConfigured { url: url.to_owned(), reason };
    let mut builder = AmazonS3Builder::new()
        .with_bucket_name(bucket)
        .with_region(options.region.as_deref().unwrap_or("us-east-1"))
        .with_allow_http(options.allow_http)
        .with_virtual_hosted_style_request(false);
    if let Some(endpoint) = &options.endpoint {
        builder = builder.with_endpoint(endpoint);
    }
    // Anonymous requests when only an endpoint is set: the client then never looks for
    // credentials, so it cannot reach the instance metadata service.
    builder = match (&options.access_key_id, &options.secret_access_key) {
        (Some(key), Some(secret)) => builder
            .with_access_key_id(key)
            .with_secret_access_key(secret)
            .with_skip_signature(false),
        (None, None) if options.endpoint.is_some() => builder.with_skip_signature(true),
        (None, None) => return Err(not_configured(NO_S3_CONFIG)),
        _ => return Err(not_configured(PARTIAL_S3_CREDENTIALS)),
    };
    let store = builder.build().map_err(|source| Error::Store { url: url.to_owned(), source })?;
    Ok((store, path))
}

/// The S3 client and object path of an `s3://bucket/prefix` URL, built only from `options`
/// (never from ambient AWS configuration): fails with a clear error when the URL is not an
/// `s3://` URL or `options` has neither an endpoint nor credentials.
pub fn s3_client(url: &str, options: &StorageOptions) -> Result<(AmazonS3, Path)> {
    let parsed = Url::parse(url).map_err(|error| invalid_url(url, error.to_string()))?;
    if parsed.scheme() != "s3" {
        return Err(invalid_url(url, "not an s3:// URL"));
    }
    s3_store(&parsed, url, options)
}

/// The filesystem path of a `file://` URL; `None` for any other URL.
/// Makes `target` a hard link to `source`, replacing a file there (as a write would), creating
/// its folder; whether it worked (not across devices, for one).
async fn link_replacing(source: &std::path::Path, target: &std::path::Path) -> bool {
    if let Some(parent) = target.parent()
        && tokio::fs::create_dir_all(parent).await.is_err()
    {
        return false;
    }
    match tokio::fs::hard_link(source, target).await {
        Ok(()) => true,
        Err(error) if error.kind() == std::io::ErrorKind::AlreadyExists => {
            tokio::fs::remove_file(target).await.is_ok()
                && tokio::fs::hard_link(source, target).await.is_ok()
        }
        Err(_) => false,
    }
}

fn local_path(url: &str) -> Option<PathBuf> {
    Url::parse(url).ok().filter(|url| url.scheme() == "file")?.to_file_path().ok()
}

fn invalid_url(url: &str, reason: impl Into<String>) -> Error {
    Error::InvalidUrl { url: url.to_owned(), reason: reason.into() }
}

/// `name` if it can be a path segment in every store: ASCII letters, digits, `-`, `_` and
/// `.`, not empty and not starting with `.`.
pub(crate) fn checked_segment<'a>(what: &'static str, name: &'a str) -> Result<&'a str> {
    let allowed = |c: char| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.');
    match !name.is_empty() && !name.starts_with('.') && name.chars().all(allowed) {
        true => Ok(name),
        false => Err(Error::InvalidName { what, name: name.to_owned() }),
    }
}
