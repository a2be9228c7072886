//! (stub, being written) Fetches one feed's bytes over http(s) or from a local file.

use crate::config::Feed;

/// Cache validators remembered from the last successful fetch of a feed.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Validators {
    pub etag: Option<String>,
    pub last_modified: Option<String>,
}

#[derive(Debug)]
pub enum FetchOutcome {
    /// The partner says nothing changed since `validators` (HTTP 304, or the same file).
    NotModified,
    Fetched {
        body: Vec<u8>,
        validators: Validators,
    },
}

#[derive(Debug, thiserror::Error)]
pub enum FetchError {
    #[error("{0}")]
    Other(String),
}

pub struct Fetcher {}

impl Fetcher {
    pub fn new() -> Result<Fetcher, FetchError> {
        Ok(Fetcher {})
    }

    pub async fn fetch(
        &self,
        _feed: &Feed,
        _validators: &Validators,
    ) -> Result<FetchOutcome, FetchError> {
        Err(FetchError::Other("not written yet".into()))
    }
}
