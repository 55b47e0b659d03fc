"""Evidence in an S3 bucket (django-storages) when EVIDENCE_S3_BUCKET is set; local disk
otherwise. Credentials are boto3's own (AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, a
profile, or an instance role). Files are only ever streamed by the tracker's authorised
views: the bucket stays private and no bucket URL is handed out."""

from __future__ import annotations

import re
from typing import Any

from tracker.env import Env

EVIDENCE_S3_VARIABLES = ("EVIDENCE_S3_ENDPOINT_URL", "EVIDENCE_S3_REGION", "EVIDENCE_S3_PREFIX")


def evidence_s3_storage(env: Env) -> dict[str, Any] | None:
    """The default storage for an S3 bucket, or None (local disk) when no bucket is named."""
    bucket = env.str("EVIDENCE_S3_BUCKET")
    endpoint = env.str("EVIDENCE_S3_ENDPOINT_URL")
    region = env.str("EVIDENCE_S3_REGION")
    prefix = env.str("EVIDENCE_S3_PREFIX").strip("/")
    if not bucket:
        stray = [name for name in EVIDENCE_S3_VARIABLES if env.str(name)]
        if stray:
            # A mistyped bucket variable would otherwise leave evidence on local disk unnoticed.
            env.refuse(f"{stray[0]} is set but EVIDENCE_S3_BUCKET is not")
        return None
    if not re.fullmatch(r"[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]", bucket):
        env.refuse(
            "EVIDENCE_S3_BUCKET must be a bucket name (3 to 63 lowercase letters, digits, "
            f"dots and hyphens), not {bucket!r}"
        )
    if endpoint and not re.fullmatch(r"https?://[^/\s?#]+/?", endpoint):
        env.refuse(f"EVIDENCE_S3_ENDPOINT_URL must be http(s)://host[:port], not {endpoint!r}")
    if region and not re.fullmatch(r"[a-z0-9-]+", region):
        env.refuse(f"EVIDENCE_S3_REGION must be like eu-west-2, not {region!r}")
    if not re.fullmatch(r"[A-Za-z0-9._-]*(/[A-Za-z0-9._-]+)*", prefix) or ".." in prefix:
        env.refuse(
            f"EVIDENCE_S3_PREFIX must be a key prefix such as tracker/evidence, not {prefix!r}"
        )
    return {
        "BACKEND": "storages.backends.s3.S3Storage",
        "OPTIONS": {
            "bucket_name": bucket,
            "endpoint_url": endpoint or None,
            "region_name": region or None,
            "location": prefix,
            # Objects take the bucket's private default; nothing is ever made public.
            "default_acl": None,
            # We never hand out bucket URLs (the authorised views stream every file); should one
            # slip out, unsigned it is refused by the private bucket rather than working for a day.
            "querystring_auth": False,
            # Two uploads with the same hash each keep their own object, as on disk.
            "file_overwrite": False,
            # S3-compatible servers (MinIO and the like) are addressed by path: a bucket as a
            # subdomain needs wildcard DNS they seldom have. AWS itself keeps botocore's choice.
            "addressing_style": "path" if endpoint else None,
            # A download is spooled here before it is streamed: past 2 MB to a temporary file,
            # so that a 50 MB file does not sit in memory for each download.
            "max_memory_size": 2 * 1024 * 1024,
        },
    }
