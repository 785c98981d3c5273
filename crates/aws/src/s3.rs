//! Reading S3 objects and listings over the official `aws-sdk-s3` client.
//!
//! The adapter owns the client. Path-style addressing is used when an endpoint is configured
//! (`AWS_ENDPOINT_URL`, the local emulator), where virtual-hosted bucket names do not resolve.

use aws_config::SdkConfig;
use aws_sdk_s3::Client;

/// S3, for the calls jobrunner makes on objects (listing for backfills, heads for sizes).
#[derive(Debug, Clone)]
pub struct S3Objects {
    client: Client,
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
}
