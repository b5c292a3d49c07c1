# The S3-compatible object storage of the archive: s3s-fs from crates.io (an S3 server over a plain directory),
# built once with `cargo install` into $ORDERFLOW_CACHE/s3s-fs-<version>/bin and run on the host and port of
# $ORDERFLOW_S3_ENDPOINT, with $ORDERFLOW_S3_ACCESS_KEY / $ORDERFLOW_S3_SECRET_KEY as its only credentials
# (SigV4, path-style requests; the region is not checked).
# Its root is $ORDERFLOW_STATE/s3/data: every directory there is a bucket, every file an object (s3s-fs keeps
# ETags and metadata in hidden .bucket-* files beside them). The bucket $ORDERFLOW_S3_BUCKET is that directory,
# made before the server starts. PutObject (also If-None-Match: * / If-Match), GetObject (with ranges),
# HeadObject, ListObjectsV2, DeleteObject and multipart uploads work; versioning and ACLs do not.
#
# Version: 0.14.1, the newest s3s-fs that builds with Rust 1.92+ (0.15 and later need Rust 1.96). The first
# build takes about 10 minutes on two cores; later `up`s use the cached binary.

S3_S3SFS_VERSION=0.14.1

s3_home() { echo "$ORDERFLOW_CACHE/s3s-fs-$S3_S3SFS_VERSION"; }
s3_bin() { echo "$(s3_home)/bin/s3s-fs"; }

# host and port of $ORDERFLOW_S3_ENDPOINT (http://host:port)
s3_hostport() {
  local hp="${ORDERFLOW_S3_ENDPOINT#*://}"
  echo "${hp%%/*}"
}

s3_install() {
  local home tmp
  [ -x "$(s3_bin)" ] && return 0
  command -v cargo >/dev/null || die "cargo is needed to build s3s-fs $S3_S3SFS_VERSION (install a Rust toolchain)"
  home="$(s3_home)"
  tmp="$home.tmp.$$"
  rm -rf "$tmp"
  log "building s3s-fs $S3_S3SFS_VERSION from crates.io into $home (about 10 minutes the first time)"
  # --locked: the Cargo.lock shipped in the crate, so the build is the same every time.
  # The build directory is cargo's own temporary one, removed afterwards: nothing lands in the repository.
  if ! cargo install --quiet s3s-fs --version "$S3_S3SFS_VERSION" --features binary --locked --root "$tmp" >&2 ||
    [ ! -x "$tmp/bin/s3s-fs" ]; then
    rm -rf "$tmp"
    die "could not build s3s-fs $S3_S3SFS_VERSION with cargo"
  fi
  rm -rf "$home"
  mv "$tmp" "$home"
}

s3_address() { echo "$ORDERFLOW_S3_ENDPOINT (bucket $ORDERFLOW_S3_BUCKET)"; }

s3_start() {
  local dir hostport
  dir="$(component_dir s3)"
  hostport="$(s3_hostport)"
  mkdir -p "$dir/data/$ORDERFLOW_S3_BUCKET"
  start_background s3 env RUST_LOG="${ORDERFLOW_S3_LOG:-info}" "$(s3_bin)" \
    --host "${hostport%:*}" --port "${hostport##*:}" \
    --access-key "$ORDERFLOW_S3_ACCESS_KEY" --secret-key "$ORDERFLOW_S3_SECRET_KEY" \
    "$dir/data"
}

# A signed HeadBucket of $ORDERFLOW_S3_BUCKET: 200 only when the server answers, accepts our credentials and
# has the bucket. (s3s-fs insists on an x-amz-content-sha256 header, even on requests without a body.)
s3_healthy() {
  curl -fsS --max-time 3 -o /dev/null -I \
    --aws-sigv4 "aws:amz:$ORDERFLOW_S3_REGION:s3" \
    --user "$ORDERFLOW_S3_ACCESS_KEY:$ORDERFLOW_S3_SECRET_KEY" \
    -H 'x-amz-content-sha256: UNSIGNED-PAYLOAD' \
    "${ORDERFLOW_S3_ENDPOINT%/}/$ORDERFLOW_S3_BUCKET"
}

s3_timeout() { echo 30; }
