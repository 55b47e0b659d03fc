"""Verifying an audit pack: its signature, every file's hash, its evidence."""

from __future__ import annotations

import base64
import hashlib
import json
import os
import zipfile
import zlib
from collections import Counter
from dataclasses import dataclass, field
from typing import IO

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from obligations.exports.auditpack import (
    EVIDENCE_INDEX,
    FORMAT,
    MANIFEST,
    MISMATCH,
    MISSING,
    SIGNATURE,
)
from obligations.exports.pack_files import READ_BYTES
from obligations.exports.signing import load_public_key, signing_key

# What zipfile raises for a damaged or doctored archive (an entry's bad CRC, compression or
# encryption it cannot read, an offset out of range), besides OSError for the file itself.
DAMAGED = (
    zipfile.BadZipFile,
    zlib.error,
    EOFError,
    NotImplementedError,
    RuntimeError,
    ValueError,
)


@dataclass
class VerifyResult:
    """Problems make the pack invalid; warnings are what the pack itself says is wrong with
    the evidence it was made from (a stored file that no longer matched its upload)."""

    problems: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    files: int = 0  # files whose SHA-256 and size matched the manifest
    signature_valid: bool = False

    @property
    def ok(self) -> bool:
        return not self.problems


def verify(
    pack: str | os.PathLike[str] | IO[bytes], public_key_pem: str | None = None
) -> VerifyResult:
    """Check a pack against its signed manifest: the signature (with `public_key_pem`, or
    the installation's key), every file's SHA-256 and size, nothing added or left out, and
    each evidence file against the hash recorded at upload.

    Anything wrong with the pack is a problem in the result; a public key that is not an
    Ed25519 key in PEM is a ValueError.
    """
    key = load_public_key(public_key_pem) if public_key_pem else signing_key().public_key()
    try:
        zf = zipfile.ZipFile(pack)
    except DAMAGED:
        return VerifyResult(problems=["Not a ZIP file, or a damaged one: not an audit pack."])
    except OSError as exc:
        return VerifyResult(problems=[f"Cannot read the pack: {exc.strerror or exc}."])
    with zf:
        return _verify(zf, key)


def _verify(zf: zipfile.ZipFile, key: Ed25519PublicKey) -> VerifyResult:
    result = VerifyResult()
    names = zf.namelist()
    # A second entry of the same name hides behind the first in most unzip tools.
    for name, n in sorted(Counter(names).items()):
        if n > 1:
            result.problems.append(f"{name}: in the pack {n} times.")
    absent = [name for name in (MANIFEST, SIGNATURE) if name not in names]
    if absent:
        result.problems.append(
            f"No {' or '.join(absent)}: not an audit pack, or not a complete one."
        )
        return result
    try:
        data, signature = zf.read(MANIFEST), zf.read(SIGNATURE)
    except DAMAGED as exc:
        result.problems.append(f"The manifest cannot be read: {exc}.")
        return result
    try:
        key.verify(base64.b64decode(signature.strip(), validate=True), data)
        result.signature_valid = True
    except (InvalidSignature, ValueError):  # ValueError: not base64
        result.problems.append(
            "manifest.sig: the signature does not verify with this public key: manifest.json "
            "was changed after signing, or the pack was signed with another key."
        )
    listed = _listed_files(data)
    if listed is None:
        result.problems.append(f"manifest.json: not a manifest of {FORMAT}.")
        return result
    hashes = _check_files(zf, listed, result)
    for name in sorted(set(names) - set(listed) - {MANIFEST, SIGNATURE}):
        result.problems.append(f"{name}: in the pack but not in the manifest.")
    if EVIDENCE_INDEX in hashes:
        _check_evidence(zf, hashes, result)
    return result


def _listed_files(data: bytes) -> dict[str, tuple[str, int]] | None:
    """The manifest's files as {name: (sha256, size)}, or None if it is not a manifest."""
    try:
        manifest = json.loads(data)
        if manifest["format"] != FORMAT:
            return None
        return {
            str(name): (str(entry["sha256"]), int(entry["size"]))
            for name, entry in manifest["files"].items()
        }
    except (ValueError, TypeError, KeyError, AttributeError):
        return None


def _check_files(
    zf: zipfile.ZipFile, listed: dict[str, tuple[str, int]], result: VerifyResult
) -> dict[str, str]:
    """Hash every listed file; the SHA-256 of each one that could be read."""
    present = set(zf.namelist())
    hashes: dict[str, str] = {}
    for name, (sha256, size) in sorted(listed.items()):
        if name not in present:
            result.problems.append(f"{name}: in the manifest but not in the pack.")
            continue
        digest, length = hashlib.sha256(), 0
        try:
            with zf.open(name) as entry:
                while chunk := entry.read(READ_BYTES):
                    digest.update(chunk)
                    length += len(chunk)
        except DAMAGED as exc:
            result.problems.append(f"{name}: cannot be read ({exc}).")
            continue
        hashes[name] = digest.hexdigest()
        if (hashes[name], length) != (sha256, size):
            result.problems.append(
                f"{name}: not the file the manifest lists (SHA-256 {hashes[name]}, "
                f"{length} bytes; the manifest says {sha256}, {size} bytes)."
            )
        else:
            result.files += 1
    return hashes


def _check_evidence(zf: zipfile.ZipFile, hashes: dict[str, str], result: VerifyResult) -> None:
    """Each packed evidence file against the SHA-256 recorded when it was uploaded."""
    try:
        rows = [
            (row["id"], row["path"], row["integrity"], row["sha256"], row["stored_sha256"])
            for row in json.loads(zf.read(EVIDENCE_INDEX))["evidence"]
        ]
    except (ValueError, TypeError, KeyError):
        result.problems.append(f"{EVIDENCE_INDEX}: not an evidence index.")
        return
    for id_, path, integrity, sha256, stored_sha256 in rows:
        label = f"evidence {id_}"
        if integrity == MISSING:
            result.warnings.append(
                f"{label}: its stored file could not be read when the pack was made."
            )
            continue
        if not path:
            continue  # a link, or a purged file: nothing was packed
        if str(path) not in hashes:
            result.problems.append(f"{label}: its file {path} is not in the pack.")
            continue
        expected = sha256
        if integrity == MISMATCH:
            result.warnings.append(
                f"{label}: when the pack was made, the stored file no longer matched the "
                f"SHA-256 recorded at upload ({sha256}); it was packed as found."
            )
            expected = stored_sha256
        if hashes[str(path)] != expected:
            result.problems.append(
                f"{path}: does not match the SHA-256 that {EVIDENCE_INDEX} records for "
                f"{label} ({expected})."
            )
