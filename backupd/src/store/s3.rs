//! S3 and S3-compatible stores (MinIO, Ceph) through the AWS SDK. Credentials come from the
//! standard environment/profile chain and never appear in logs or errors.

use async_trait::async_trait;
use aws_sdk_s3::primitives::ByteStream;
use aws_sdk_s3::types::{CompletedMultipartUpload, CompletedPart};
use aws_sdk_s3::Client;
use bytes::Bytes;
use tokio::io::AsyncRead;

use super::object_store::{ObjectStore, Upload};
use crate::Error;

/// The `[backup]` settings for S3.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct S3Options {
    /// Region; the environment's (or `us-east-1`) when `None`.
    pub region: Option<String>,
    /// Endpoint override for S3-compatible stores.
    pub endpoint: Option<String>,
    /// Path-style addressing.
    pub path_style: bool,
}

/// A bucket.
#[derive(Clone, Debug)]
pub struct S3Store {
    client: Client,
    bucket: String,
}

impl S3Store {
    /// A client for `bucket` with the AWS environment's credentials.
    pub async fn connect(bucket: String, options: &S3Options) -> Self {
        let mut loader = aws_config::defaults(aws_config::BehaviorVersion::latest());
        if let Some(region) = &options.region {
            loader = loader.region(aws_config::Region::new(region.clone()));
        }
        let shared = loader.load().await;
        let mut config =
            aws_sdk_s3::config::Builder::from(&shared).force_path_style(options.path_style);
        if shared.region().is_none() {
            config = config.region(aws_config::Region::new("us-east-1"));
        }
        if let Some(endpoint) = &options.endpoint {
            config = config.endpoint_url(endpoint);
        }
        Self {
            client: Client::from_conf(config.build()),
            bucket,
        }
    }
}

struct S3Upload {
    client: Client,
    bucket: String,
    key: String,
    id: String,
    parts: Vec<CompletedPart>,
    sent: u64,
}

#[async_trait]
impl Upload for S3Upload {
    async fn part(&mut self, data: Bytes) -> Result<(), Error> {
        let number = i32::try_from(self.parts.len() + 1).unwrap_or(i32::MAX);
        let len = data.len() as u64;
        let out = self
            .client
            .upload_part()
            .bucket(&self.bucket)
            .key(&self.key)
            .upload_id(&self.id)
            .part_number(number)
            .body(ByteStream::from(data))
            .send()
            .await
            .map_err(|e| Error::s3("upload_part", &self.key, e))?;
        self.parts.push(
            CompletedPart::builder()
                .part_number(number)
                .set_e_tag(out.e_tag)
                .build(),
        );
        self.sent += len;
        Ok(())
    }

    async fn complete(self: Box<Self>) -> Result<(), Error> {
        let completed = self
            .client
            .complete_multipart_upload()
            .bucket(&self.bucket)
            .key(&self.key)
            .upload_id(&self.id)
            .multipart_upload(
                CompletedMultipartUpload::builder()
                    .set_parts(Some(self.parts))
                    .build(),
            )
            .send()
            .await;
        match completed {
            Ok(_) => Ok(()),
            // Some S3-compatible stores (moto) answer with a differently named XML root that
            // the SDK cannot parse; the object then exists, and its size is checked instead.
            Err(e) if e.raw_response().is_some_and(|r| r.status().is_success()) => {
                let head = self
                    .client
                    .head_object()
                    .bucket(&self.bucket)
                    .key(&self.key)
                    .send()
                    .await
                    .map_err(|h| Error::s3("head_object", &self.key, h))?;
                if head.content_length().and_then(|l| u64::try_from(l).ok()) == Some(self.sent) {
                    Ok(())
                } else {
                    Err(Error::s3("complete_multipart_upload", &self.key, e))
                }
            }
            Err(e) => Err(Error::s3("complete_multipart_upload", &self.key, e)),
        }
    }

    async fn abort(self: Box<Self>) -> Result<(), Error> {
        self.client
            .abort_multipart_upload()
            .bucket(&self.bucket)
            .key(&self.key)
            .upload_id(&self.id)
            .send()
            .await
            .map_err(|e| Error::s3("abort_multipart_upload", &self.key, e))?;
        Ok(())
    }
}

#[async_trait]
impl ObjectStore for S3Store {
    async fn start_upload(&self, key: &str) -> Result<Box<dyn Upload>, Error> {
        let out = self
            .client
            .create_multipart_upload()
            .bucket(&self.bucket)
            .key(key)
            .send()
            .await
            .map_err(|e| Error::s3("create_multipart_upload", key, e))?;
        Ok(Box::new(S3Upload {
            client: self.client.clone(),
            bucket: self.bucket.clone(),
            key: key.to_string(),
            id: out.upload_id.unwrap_or_default(),
            parts: Vec::new(),
            sent: 0,
        }))
    }

    async fn put(&self, key: &str, data: Bytes) -> Result<(), Error> {
        self.client
            .put_object()
            .bucket(&self.bucket)
            .key(key)
            .body(ByteStream::from(data))
            .send()
            .await
            .map_err(|e| Error::s3("put_object", key, e))?;
        Ok(())
    }

    async fn put_if_absent(&self, key: &str, data: Bytes) -> Result<bool, Error> {
        // Conditional writes where the store has them; the read-back below covers stores
        // that ignore If-None-Match (the last writer wins, and only it sees its own bytes).
        if self.get(key).await?.is_some() {
            return Ok(false);
        }
        let sent = self
            .client
            .put_object()
            .bucket(&self.bucket)
            .key(key)
            .if_none_match("*")
            .body(ByteStream::from(data.clone()))
            .send()
            .await;
        if let Err(e) = sent {
            if e.raw_response().is_some_and(|r| r.status().as_u16() == 412) {
                return Ok(false);
            }
            return Err(Error::s3("put_object", key, e));
        }
        Ok(self.get(key).await?.as_ref() == Some(&data))
    }

    async fn get(&self, key: &str) -> Result<Option<Bytes>, Error> {
        let out = match self
            .client
            .get_object()
            .bucket(&self.bucket)
            .key(key)
            .send()
            .await
        {
            Ok(out) => out,
            Err(e) if e.as_service_error().is_some_and(|s| s.is_no_such_key()) => return Ok(None),
            Err(e) => return Err(Error::s3("get_object", key, e)),
        };
        let data = out
            .body
            .collect()
            .await
            .map_err(|e| Error::Io(std::io::Error::other(e)))?;
        Ok(Some(data.into_bytes()))
    }

    async fn open(&self, key: &str) -> Result<Box<dyn AsyncRead + Send + Unpin>, Error> {
        let out = self
            .client
            .get_object()
            .bucket(&self.bucket)
            .key(key)
            .send()
            .await
            .map_err(|e| Error::s3("get_object", key, e))?;
        Ok(Box::new(out.body.into_async_read()))
    }

    async fn list(&self, prefix: &str) -> Result<Vec<String>, Error> {
        let mut keys = Vec::new();
        let mut pages = self
            .client
            .list_objects_v2()
            .bucket(&self.bucket)
            .prefix(prefix)
            .into_paginator()
            .send();
        while let Some(page) = pages.next().await {
            let page = page.map_err(|e| Error::s3("list_objects_v2", prefix, e))?;
            keys.extend(
                page.contents()
                    .iter()
                    .filter_map(|o| o.key().map(str::to_string)),
            );
        }
        Ok(keys)
    }

    async fn delete(&self, key: &str) -> Result<(), Error> {
        self.client
            .delete_object()
            .bucket(&self.bucket)
            .key(key)
            .send()
            .await
            .map_err(|e| Error::s3("delete_object", key, e))?;
        Ok(())
    }

    async fn pending_uploads(&self, prefix: &str) -> Result<Vec<(String, String)>, Error> {
        let out = self
            .client
            .list_multipart_uploads()
            .bucket(&self.bucket)
            .prefix(prefix)
            .send()
            .await
            .map_err(|e| Error::s3("list_multipart_uploads", prefix, e))?;
        Ok(out
            .uploads()
            .iter()
            .filter_map(|u| Some((u.key()?.to_string(), u.upload_id()?.to_string())))
            .collect())
    }

    async fn abort_upload(&self, key: &str, upload_id: &str) -> Result<(), Error> {
        self.client
            .abort_multipart_upload()
            .bucket(&self.bucket)
            .key(key)
            .upload_id(upload_id)
            .send()
            .await
            .map_err(|e| Error::s3("abort_multipart_upload", key, e))?;
        Ok(())
    }
}
