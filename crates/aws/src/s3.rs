//! Reading S3 objects and listings over the official `aws-sdk-s3` client.
//!
//! The adapter owns the client. Path-style addressing is used when an endpoint is configured
//! (`AWS_ENDPOINT_URL`, the local emulator), where virtual-hosted bucket names do not resolve.
//! A [`Listing`] walks a prefix page by page (`ListObjectsV2`, or `ListObjectVersions` for every
//! version), in key order, resumable after any key.

use aws_config::SdkConfig;
use aws_sdk_s3::Client;
use chrono::{DateTime, Utc};

use crate::error::{Error, from_sdk};

/// S3, for the calls jobrunner makes on objects (listing for backfills, heads for sizes).
#[derive(Debug, Clone)]
pub struct S3Objects {
    client: Client,
}

/// One object (or object version) as a listing shows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ListedObject {
    pub key: String,
    pub size: u64,
    /// Without the quotes S3 puts around it in listings (events carry it bare).
    pub etag: Option<String>,
    /// `None` for unversioned buckets (S3's `"null"` version included).
    pub version_id: Option<String>,
    pub last_modified: Option<DateTime<Utc>>,
    /// Whether this is the key's current version (always true without `--versions`).
    pub is_latest: bool,
}

/// Which listing to walk.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ListMode {
    /// `ListObjectsV2`: the current object of each key.
    Current,
    /// `ListObjectVersions`: every version of every key (delete markers left out).
    Versions,
}

/// A paginated walk over `bucket`/`prefix`: call [`Listing::next_page`] until it gives `None`.
#[derive(Debug)]
pub struct Listing<'a> {
    s3: &'a S3Objects,
    bucket: String,
    prefix: String,
    mode: ListMode,
    page_size: i32,
    /// ListObjectsV2's continuation token; `start_after` for the first page.
    continuation: Option<String>,
    start_after: Option<String>,
    /// ListObjectVersions' markers.
    key_marker: Option<String>,
    version_marker: Option<String>,
    done: bool,
}

impl S3Objects {
    pub fn new(client: Client) -> Self {
        S3Objects { client }
    }

    /// A client from the shared configuration, path-style when an endpoint is set.
    pub fn from_config(config: &SdkConfig) -> Self {
        let path_style = config.endpoint_url().is_some();
        let s3 = aws_sdk_s3::config::Builder::from(config)
            .force_path_style(path_style)
            .build();
        S3Objects::new(Client::from_conf(s3))
    }

    pub fn client(&self) -> &Client {
        &self.client
    }

    /// A listing of `bucket` under `prefix`, starting after key `start_after` (exclusive: a
    /// resume point is the last key fully handled). Pages hold up to `page_size` (1-1000).
    pub fn list(
        &self,
        bucket: &str,
        prefix: &str,
        mode: ListMode,
        start_after: Option<&str>,
        page_size: i32,
    ) -> Listing<'_> {
        Listing {
            s3: self,
            bucket: bucket.into(),
            prefix: prefix.into(),
            mode,
            page_size: page_size.clamp(1, 1000),
            continuation: None,
            start_after: start_after.map(Into::into),
            // ListObjectVersions' key-marker alone starts after every version of that key.
            key_marker: start_after.map(Into::into),
            version_marker: None,
            done: false,
        }
    }
}

impl Listing<'_> {
    /// The next page in key order (versions of a key newest first); `None` when done.
    pub async fn next_page(&mut self) -> Result<Option<Vec<ListedObject>>, Error> {
        if self.done {
            return Ok(None);
        }
        match self.mode {
            ListMode::Current => self.next_current().await.map(Some),
            ListMode::Versions => self.next_versions().await.map(Some),
        }
    }

    async fn next_current(&mut self) -> Result<Vec<ListedObject>, Error> {
        let mut request = self
            .s3
            .client
            .list_objects_v2()
            .bucket(&self.bucket)
            .max_keys(self.page_size);
        if !self.prefix.is_empty() {
            request = request.prefix(&self.prefix);
        }
        request = match &self.continuation {
            Some(token) => request.continuation_token(token),
            None => request.set_start_after(self.start_after.clone()),
        };
        let page = request
            .send()
            .await
            .map_err(|e| from_sdk("ListObjectsV2", e))?;
        self.continuation = page.next_continuation_token().map(str::to_owned);
        self.done = !page.is_truncated().unwrap_or(false) || self.continuation.is_none();
        Ok(page
            .contents()
            .iter()
            .filter_map(|o| {
                Some(ListedObject {
                    key: o.key()?.to_owned(),
                    size: o.size().and_then(|s| u64::try_from(s).ok()).unwrap_or(0),
                    etag: bare_etag(o.e_tag()),
                    version_id: None,
                    last_modified: o.last_modified().and_then(to_chrono),
                    is_latest: true,
                })
            })
            .collect())
    }

    async fn next_versions(&mut self) -> Result<Vec<ListedObject>, Error> {
        let mut request = self
            .s3
            .client
            .list_object_versions()
            .bucket(&self.bucket)
            .max_keys(self.page_size)
            .set_key_marker(self.key_marker.clone())
            .set_version_id_marker(self.version_marker.clone());
        if !self.prefix.is_empty() {
            request = request.prefix(&self.prefix);
        }
        let page = request
            .send()
            .await
            .map_err(|e| from_sdk("ListObjectVersions", e))?;
        self.key_marker = page.next_key_marker().map(str::to_owned);
        self.version_marker = page.next_version_id_marker().map(str::to_owned);
        self.done = !page.is_truncated().unwrap_or(false) || self.key_marker.is_none();
        Ok(page
            .versions()
            .iter()
            .filter_map(|v| {
                Some(ListedObject {
                    key: v.key()?.to_owned(),
                    size: v.size().and_then(|s| u64::try_from(s).ok()).unwrap_or(0),
                    etag: bare_etag(v.e_tag()),
                    version_id: v
                        .version_id()
                        .filter(|id| !id.is_empty() && *id != "null")
                        .map(str::to_owned),
                    last_modified: v.last_modified().and_then(to_chrono),
                    is_latest: v.is_latest().unwrap_or(false),
                })
            })
            .collect())
    }
}

/// Listings quote ETags (`"abc"`); events do not.
fn bare_etag(etag: Option<&str>) -> Option<String> {
    etag.map(|e| e.trim_matches('"').to_owned())
        .filter(|e| !e.is_empty())
}

fn to_chrono(time: &aws_sdk_s3::primitives::DateTime) -> Option<DateTime<Utc>> {
    DateTime::from_timestamp(time.secs(), time.subsec_nanos())
}

#[cfg(test)]
mod tests {
    use aws_sdk_s3::operation::list_object_versions::ListObjectVersionsOutput;
    use aws_sdk_s3::operation::list_objects_v2::ListObjectsV2Output;
    use aws_sdk_s3::types::{Object, ObjectVersion};
    use aws_smithy_mocks::{RuleMode, mock, mock_client};

    use super::*;

    fn object(key: &str) -> Object {
        Object::builder()
            .key(key)
            .size(7)
            .e_tag("\"abc\"")
            .last_modified(aws_sdk_s3::primitives::DateTime::from_secs(1_700_000_000))
            .build()
    }

    #[tokio::test]
    async fn pages_follow_the_continuation_token_and_start_after_the_resume_key() {
        let first = mock!(Client::list_objects_v2)
            .match_requests(|r| {
                r.start_after() == Some("a/0")
                    && r.continuation_token().is_none()
                    && r.prefix() == Some("a/")
            })
            .then_output(|| {
                ListObjectsV2Output::builder()
                    .contents(object("a/1"))
                    .is_truncated(true)
                    .next_continuation_token("t1")
                    .build()
            });
        let second = mock!(Client::list_objects_v2)
            .match_requests(|r| r.continuation_token() == Some("t1"))
            .then_output(|| {
                ListObjectsV2Output::builder()
                    .contents(object("a/2"))
                    .is_truncated(false)
                    .build()
            });
        let client = mock_client!(aws_sdk_s3, RuleMode::Sequential, [&first, &second]);
        let s3 = S3Objects::new(client);
        let mut listing = s3.list("b", "a/", ListMode::Current, Some("a/0"), 1000);
        let page = listing.next_page().await.unwrap().unwrap();
        assert_eq!(page[0].key, "a/1");
        assert_eq!(page[0].etag.as_deref(), Some("abc"));
        assert_eq!(page[0].size, 7);
        assert_eq!(
            page[0].last_modified,
            Some("2023-11-14T22:13:20Z".parse().unwrap())
        );
        assert_eq!(listing.next_page().await.unwrap().unwrap()[0].key, "a/2");
        assert!(listing.next_page().await.unwrap().is_none());
        assert_eq!(second.num_calls(), 1);
    }

    #[tokio::test]
    async fn versions_follow_both_markers_and_drop_the_null_version() {
        let version = |key: &str, id: &str, latest: bool| {
            ObjectVersion::builder()
                .key(key)
                .version_id(id)
                .size(3)
                .e_tag("\"e\"")
                .is_latest(latest)
                .build()
        };
        let first = mock!(Client::list_object_versions)
            .match_requests(|r| r.key_marker().is_none())
            .then_output(move || {
                ListObjectVersionsOutput::builder()
                    .versions(version("k", "v2", true))
                    .is_truncated(true)
                    .next_key_marker("k")
                    .next_version_id_marker("v2")
                    .build()
            });
        let second = mock!(Client::list_object_versions)
            .match_requests(|r| r.key_marker() == Some("k") && r.version_id_marker() == Some("v2"))
            .then_output(move || {
                ListObjectVersionsOutput::builder()
                    .versions(version("k", "v1", false))
                    .versions(version("l", "null", true))
                    .is_truncated(false)
                    .build()
            });
        let client = mock_client!(aws_sdk_s3, RuleMode::Sequential, [&first, &second]);
        let s3 = S3Objects::new(client);
        let mut listing = s3.list("b", "", ListMode::Versions, None, 1000);
        let page = listing.next_page().await.unwrap().unwrap();
        assert_eq!(
            (page[0].version_id.as_deref(), page[0].is_latest),
            (Some("v2"), true)
        );
        let page = listing.next_page().await.unwrap().unwrap();
        assert_eq!(page[0].version_id.as_deref(), Some("v1"));
        assert_eq!(
            page[1].version_id, None,
            "S3's \"null\" version is no version"
        );
        assert!(listing.next_page().await.unwrap().is_none());
    }
}
