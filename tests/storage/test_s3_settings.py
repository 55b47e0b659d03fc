"""EVIDENCE_S3_* settings: local disk unless a bucket is named; a bad value stops start-up with
one line naming the variable."""

import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from django.conf import settings

from tracker.env import ConfigurationError, Env
from tracker.storage import evidence_s3_storage as from_env


def evidence_s3_storage(environ: dict[str, str]) -> dict[str, Any] | None:
    env = Env(environ)
    storage = from_env(env)
    env.check()
    return storage


SHOW = "from django.conf import settings; print(settings.STORAGES['default']['BACKEND'])"


def show_storage(tmp_path: Path, **env: str) -> subprocess.CompletedProcess[str]:
    environment = {
        **{k: v for k, v in os.environ.items() if not k.startswith("EVIDENCE_S3_")},
        "TRACKER_VAR_DIR": str(tmp_path),
        "DJANGO_SETTINGS_MODULE": "tracker.settings",
        **env,
    }
    return subprocess.run(
        [sys.executable, "-c", f"import django; django.setup(); {SHOW}"],
        cwd=Path(settings.BASE_DIR),
        env=environment,
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_local_disk_by_default_the_bucket_when_named_and_a_bad_value_stops_start_up(tmp_path):
    assert show_storage(tmp_path).stdout.strip() == "django.core.files.storage.FileSystemStorage"
    s3 = show_storage(tmp_path, EVIDENCE_S3_BUCKET="osa-evidence")
    assert s3.stdout.strip() == "storages.backends.s3.S3Storage", s3.stderr
    # Nothing is created, and nothing contacted, at import time.
    assert not (tmp_path / "evidence").exists()
    refused = show_storage(tmp_path, EVIDENCE_S3_BUCKET="Evidence_Bucket")
    assert refused.returncode == 1
    assert refused.stderr.strip().splitlines() == [
        "Configuration error: EVIDENCE_S3_BUCKET must be a bucket name "
        "(3 to 63 lowercase letters, digits, dots and hyphens), not 'Evidence_Bucket'"
    ]


def test_the_options_keep_the_bucket_private_and_never_overwrite():
    storage = evidence_s3_storage(
        {
            "EVIDENCE_S3_BUCKET": "osa-evidence",
            "EVIDENCE_S3_ENDPOINT_URL": "https://minio.internal:9000",
            "EVIDENCE_S3_REGION": "eu-west-2",
            "EVIDENCE_S3_PREFIX": "/tracker/evidence/",
        }
    )
    assert storage is not None
    assert storage["BACKEND"] == "storages.backends.s3.S3Storage"
    options = storage["OPTIONS"]
    assert options["bucket_name"] == "osa-evidence"
    assert options["endpoint_url"] == "https://minio.internal:9000"
    assert (options["region_name"], options["location"]) == ("eu-west-2", "tracker/evidence")
    assert (options["default_acl"], options["querystring_auth"]) == (None, False)
    assert (options["file_overwrite"], options["addressing_style"]) == (False, "path")
    aws = evidence_s3_storage({"EVIDENCE_S3_BUCKET": "osa-evidence"})
    assert aws is not None
    assert (aws["OPTIONS"]["endpoint_url"], aws["OPTIONS"]["addressing_style"]) == (None, None)
    assert evidence_s3_storage({}) is None


@pytest.mark.parametrize(
    ("env", "message"),
    [
        ({"EVIDENCE_S3_BUCKET": "ab"}, "EVIDENCE_S3_BUCKET must be a bucket name"),
        (
            {"EVIDENCE_S3_BUCKET": "osa", "EVIDENCE_S3_ENDPOINT_URL": "minio:9000"},
            "EVIDENCE_S3_ENDPOINT_URL must be http(s)://host[:port], not 'minio:9000'",
        ),
        (
            {"EVIDENCE_S3_BUCKET": "osa", "EVIDENCE_S3_REGION": "EU West"},
            "EVIDENCE_S3_REGION must be like eu-west-2, not 'EU West'",
        ),
        (
            {"EVIDENCE_S3_BUCKET": "osa", "EVIDENCE_S3_PREFIX": "a/../b"},
            "EVIDENCE_S3_PREFIX must be a key prefix",
        ),
        (
            {"EVIDENCE_S3_BUKET": "osa", "EVIDENCE_S3_ENDPOINT_URL": "http://minio:9000"},
            "EVIDENCE_S3_ENDPOINT_URL is set but EVIDENCE_S3_BUCKET is not",
        ),
    ],
)
def test_a_malformed_value_is_refused_naming_its_variable(env, message):
    with pytest.raises(ConfigurationError) as refused:
        evidence_s3_storage(env)
    assert str(refused.value).startswith(f"Configuration error: {message}")
    assert "\n" not in str(refused.value)
