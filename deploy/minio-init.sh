#!/bin/sh
# One-shot init for docker-compose (runs in the minio/mc image): creates the landing bucket
# and an application user that may only use that bucket. The consumer and Dagster sign in
# as AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY, never as the MinIO root user.
# Every step is idempotent: `docker compose up` runs it again on each start.
set -eu
: "${MINIO_ROOT_USER:?}" "${MINIO_ROOT_PASSWORD:?}" "${S3_BUCKET:?}"
: "${AWS_ACCESS_KEY_ID:?}" "${AWS_SECRET_ACCESS_KEY:?}"

mc alias set local http://minio:9000 "$MINIO_ROOT_USER" "$MINIO_ROOT_PASSWORD" >/dev/null
mc mb --ignore-existing "local/$S3_BUCKET"

policy=/tmp/spotify-landing-policy.json
cat >"$policy" <<JSON
{
  "Version": "2012-10-17",
  "Statement": [
    {"Effect": "Allow", "Action": ["s3:GetBucketLocation", "s3:ListBucket"],
     "Resource": ["arn:aws:s3:::$S3_BUCKET"]},
    {"Effect": "Allow", "Action": ["s3:GetObject", "s3:PutObject", "s3:DeleteObject"],
     "Resource": ["arn:aws:s3:::$S3_BUCKET/*"]}
  ]
}
JSON
mc admin policy create local spotify-landing "$policy"
# `user add` on an existing user only updates its secret.
mc admin user add local "$AWS_ACCESS_KEY_ID" "$AWS_SECRET_ACCESS_KEY"
# Attaching an already attached policy is an error worth ignoring; anything else is not.
if ! out=$(mc admin policy attach local spotify-landing --user "$AWS_ACCESS_KEY_ID" 2>&1); then
  case "$out" in
    *already*) ;;
    *) echo "$out" >&2; exit 1 ;;
  esac
fi
echo "bucket $S3_BUCKET ready for user $AWS_ACCESS_KEY_ID"
