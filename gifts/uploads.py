# ruff: noqa: RUF001
"""Uploaded documents (licences, dispute evidence): PDF, JPEG or PNG decided by the bytes, never by
the name or the browser's content type; at most ``settings.MAX_UPLOAD_BYTES``. Files go to the
default storage (``.data/private``, outside the web root) under a random name, and are streamed
back only by ``gifts.views.document_file`` after it checked the owner or staff.
"""

import hashlib
import uuid
from dataclasses import dataclass

import filetype
from django.conf import settings
from django.core.files.storage import default_storage
from django.utils.translation import gettext as _

from gifts.errors import UploadRejected

# content type → (extension, magic bytes the file must start with)
ALLOWED = {
    "application/pdf": ("pdf", b"%PDF-"),
    "image/jpeg": ("jpg", b"\xff\xd8\xff"),
    "image/png": ("png", b"\x89PNG\r\n\x1a\n"),
}
HEAD_BYTES = 8192


@dataclass(frozen=True)
class StoredFile:
    storage_name: str
    original_name: str
    content_type: str
    size_bytes: int
    sha256: str


def inspect_upload(upload) -> tuple[str, str]:
    """Return (content_type, extension) or raise UploadRejected."""
    size = upload.size
    limit = getattr(settings, "MAX_UPLOAD_BYTES", 10 * 1024 * 1024)
    if size is None or size > limit:
        raise UploadRejected(
            "UPLOAD-TOO-LARGE",
            _("文件不能超过 %(limit)s MB") % {"limit": limit // (1024 * 1024)},
            field="file",
        )
    if size == 0:
        raise UploadRejected("UPLOAD-EMPTY", _("文件为空"), field="file")
    upload.seek(0)
    head = upload.read(HEAD_BYTES)
    upload.seek(0)
    kind = filetype.guess(head)
    content_type = kind.mime if kind is not None else None
    if content_type not in ALLOWED or not head.startswith(ALLOWED[content_type][1]):
        raise UploadRejected("UPLOAD-TYPE", _("只接受 PDF、JPEG 或 PNG 文件（按文件内容识别）"), field="file")
    return content_type, ALLOWED[content_type][0]


def store_upload(upload, *, folder: str) -> StoredFile:
    """Validate and save; the stored name is random so no user input reaches the path."""
    content_type, ext = inspect_upload(upload)
    digest = hashlib.sha256()
    for chunk in upload.chunks():
        digest.update(chunk)
    upload.seek(0)
    name = default_storage.save(f"{folder}/{uuid.uuid4().hex}.{ext}", upload)
    original = (getattr(upload, "name", "") or f"upload.{ext}").rsplit("/", 1)[-1][:255]
    return StoredFile(
        storage_name=name,
        original_name=original,
        content_type=content_type,
        size_bytes=upload.size,
        sha256=digest.hexdigest(),
    )


def delete_stored(storage_name: str) -> None:
    """Remove a file whose database row was never committed (called on rollback paths)."""
    if storage_name and default_storage.exists(storage_name):
        default_storage.delete(storage_name)
