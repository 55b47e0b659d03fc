"""Evidence intake: hash while the upload streams in, and refuse what we will not keep."""

from __future__ import annotations

import hashlib
import mimetypes
import os
from collections.abc import Iterable
from typing import Any

from django.conf import settings
from django.core.files.uploadedfile import UploadedFile
from django.core.files.uploadhandler import StopUpload, TemporaryFileUploadHandler

# First bytes of the types we can recognise; a file claiming one of these must start so.
SIGNATURES = {
    "application/pdf": (b"%PDF-",),
    "image/png": (b"\x89PNG\r\n\x1a\n",),
    "image/jpeg": (b"\xff\xd8\xff",),
}


# What a person calls each type we keep, for messages: nobody should have to read a MIME type.
KIND_NAMES = {
    "application/pdf": "PDF",
    "image/png": "PNG",
    "image/jpeg": "JPEG",
    "text/plain": "plain text",
    "text/csv": "CSV",
    "application/json": "JSON",
    "application/vnd.openxmlformats-officedocument.wordprocessingml.document": "Word (.docx)",
    "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet": "Excel (.xlsx)",
    "application/vnd.oasis.opendocument.text": "OpenDocument text (.odt)",
    "application/vnd.oasis.opendocument.spreadsheet": "OpenDocument spreadsheet (.ods)",
}

ZIP_BASED = {
    "application/vnd.openxmlformats-officedocument.wordprocessingml.document",
    "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
    "application/vnd.oasis.opendocument.text",
    "application/vnd.oasis.opendocument.spreadsheet",
}


class EvidenceRefused(ValueError):
    """An upload the register will not keep; `status` is the HTTP status it deserves."""

    def __init__(self, message: str, status: int = 400) -> None:
        super().__init__(message)
        self.status = status


class HashingUploadHandler(TemporaryFileUploadHandler):
    """Writes the upload to a temporary file, computing its SHA-256 and size on the way,
    and stops reading as soon as it passes the configured limit."""

    def new_file(self, *args: Any, **kwargs: Any) -> None:
        super().new_file(*args, **kwargs)
        self.sha256 = hashlib.sha256()
        self.too_large = False

    def receive_data_chunk(self, raw_data: bytes, start: int) -> bytes | None:
        if start + len(raw_data) > settings.EVIDENCE_MAX_BYTES:
            self.too_large = True
            self.request.evidence_too_large = True  # type: ignore[union-attr]
            raise StopUpload(connection_reset=False)
        self.sha256.update(raw_data)
        return super().receive_data_chunk(raw_data, start)

    def file_complete(self, file_size: int) -> UploadedFile | None:
        uploaded = super().file_complete(file_size)
        if uploaded is not None:
            uploaded.sha256 = self.sha256.hexdigest()  # type: ignore[attr-defined]
        return uploaded


def content_type_for(name: str) -> str:
    guessed, _ = mimetypes.guess_type(name, strict=False)
    return guessed or "application/octet-stream"


def kind_name(content_type: str, name: str = "") -> str:
    """A file type in words: "PDF", or the file's extension when we have no name for it."""
    if content_type in KIND_NAMES:
        return KIND_NAMES[content_type]
    extension = os.path.splitext(name)[1].lstrip(".").lower()
    return f".{extension}" if extension.isalnum() and len(extension) <= 10 else "Unrecognised"


def accepted_kinds() -> str:
    """The kinds of evidence this installation accepts, in words, in a stable order."""
    return ", ".join(sorted(kind_name(kind) for kind in settings.EVIDENCE_CONTENT_TYPES))


def check_and_hash(uploaded: UploadedFile) -> tuple[str, str, int]:
    """(sha256, content type, size) of an upload, or EvidenceRefused with the reason."""
    size = uploaded.size or 0
    limit = settings.EVIDENCE_MAX_BYTES
    if size > limit:
        raise EvidenceRefused(
            f"The file is {size:,} bytes; the limit is {limit:,} bytes.", status=413
        )
    if size == 0:
        raise EvidenceRefused("The file is empty.")
    content_type = content_type_for(uploaded.name or "")
    if content_type not in settings.EVIDENCE_CONTENT_TYPES:
        raise EvidenceRefused(
            f"{kind_name(content_type, uploaded.name or '')} files are not accepted as "
            f"evidence (accepted: {accepted_kinds()}).",
            status=415,
        )
    uploaded.seek(0)
    head = uploaded.read(8)
    uploaded.seek(0)
    expected = SIGNATURES.get(content_type) or (
        (b"PK\x03\x04",) if content_type in ZIP_BASED else None
    )
    if expected and not head.startswith(expected):
        raise EvidenceRefused(
            f"The file is named as {kind_name(content_type)} but its content is not.",
            status=415,
        )
    sha = getattr(uploaded, "sha256", None) or _sha256(uploaded.chunks())
    return sha, content_type, size


def _sha256(chunks: Iterable[bytes]) -> str:
    digest = hashlib.sha256()
    for chunk in chunks:
        digest.update(chunk)
    return digest.hexdigest()
