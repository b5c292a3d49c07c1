//! The S3 server: put, list and get an object in the archive bucket with `object_store`.

use futures::TryStreamExt;
use object_store::aws::AmazonS3Builder;
use object_store::path::Path;
use object_store::{ObjectStore, PutPayload};
use orderflow_platform::config::ExposeSecret;

use crate::support::{Server, stack, unique};

#[tokio::test]
async fn put_list_and_get_an_object() {
    let config = stack();
    Server::S3.require(&config);
    let store = AmazonS3Builder::new()
        .with_endpoint(&config.s3.endpoint)
        .with_region(&config.s3.region)
        .with_bucket_name(&config.s3.bucket)
        .with_access_key_id(&config.s3.access_key)
        .with_secret_access_key(config.s3.secret_key.expose_secret())
        .with_allow_http(true)
        .with_virtual_hosted_style_request(false)
        .build()
        .unwrap_or_else(|e| Server::S3.failed(&config, "build a client", e));

    let prefix = Path::from(unique("smoke"));
    let path = prefix.child("2026-11-22").child("orders.events-0-42.avro");
    let body = b"archived bytes".to_vec();
    store
        .put(&path, PutPayload::from(body.clone()))
        .await
        .unwrap_or_else(|e| Server::S3.failed(&config, "put an object", e));

    let listed: Vec<_> = store
        .list(Some(&prefix))
        .try_collect()
        .await
        .unwrap_or_else(|e| Server::S3.failed(&config, "list objects", e));
    assert_eq!(listed.len(), 1, "{listed:?}");
    assert_eq!(listed[0].location, path);
    assert_eq!(listed[0].size, body.len() as u64);

    let got = store
        .get(&path)
        .await
        .unwrap_or_else(|e| Server::S3.failed(&config, "get an object", e))
        .bytes()
        .await
        .unwrap_or_else(|e| Server::S3.failed(&config, "read an object", e));
    assert_eq!(got.as_ref(), body.as_slice());

    store
        .delete(&path)
        .await
        .unwrap_or_else(|e| Server::S3.failed(&config, "delete an object", e));
}
