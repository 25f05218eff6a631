"""What an image set is, in one hash: the part of the prediction cache's key that stands for the images.

A set's content hash covers its class list, and for each listed file in order its relative name,
size and SHA-256: it changes when a set is regenerated (another seed, JPEG quality or generator
version), when a root points at another copy whose bytes differ, and when the order or the
labels change, and stays when the same bytes are found again (a copy with equal content may reuse
the cache). It is computed once per set, by its own job, and read by every model's evaluation;
hashing 50,000 ImageNet files per model would cost more than evaluating them.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from pathlib import Path

from noisetrain.errors import DataError, InputError
from noisetrain.storage import name_bytes, read_json_file, write_json

INDEX_KEYS = ("corruption", "severity", "source", "images", "bytes", "listing", "content")


def _update(digest, *parts: str) -> None:
    for part in parts:
        digest.update(name_bytes(part))
        digest.update(b"\0")  # no name contains NUL: the joined parts are unambiguous


def _check_lists(what: str, files, classes) -> None:
    if isinstance(files, str) or isinstance(classes, str):
        raise InputError(f"{what} takes lists of relative file paths and class names, not one string")


def listing_hash(files: Sequence[str], classes: Sequence[str]) -> str:
    """SHA-256 of the class list and the ordered file names alone: cheap to recompute, so a reader
    can check that an index was made from the listing it has."""
    _check_lists("listing_hash", files, classes)
    digest = hashlib.sha256()
    _update(digest, "classes", *classes, "files", *files)
    return digest.hexdigest()


def content_hash(root: str | Path, files: Sequence[str], classes: Sequence[str]) -> tuple[str, int]:
    """(SHA-256 over the classes and each file's name, size and bytes, total bytes) of ``files``,
    relative paths under ``root``, in their order."""
    _check_lists("content_hash", files, classes)
    root, digest, total = Path(root), hashlib.sha256(), 0
    _update(digest, "classes", *classes, "files")
    for name in files:
        path = root / name
        try:
            with path.open("rb") as handle:
                file_digest = hashlib.file_digest(handle, "sha256").hexdigest()
            size = path.stat().st_size
        except OSError as exc:
            raise DataError(f"cannot read {path} of the image set under {root} ({exc.strerror or exc}): "
                            "restore the file or rerun the rule that writes the set") from exc
        _update(digest, name, str(size), file_digest)
        total += size
    return digest.hexdigest(), total


def write_set_index(source: str | Path, files: Sequence[str], classes: Sequence[str], corruption: str, severity: int,
                    out: str | Path) -> dict:
    """Hash the set under ``source`` and write its index (atomically) to ``out``."""
    if not files:
        raise InputError(f"the image set {corruption}/{severity} under {source} lists no files")
    content, total = content_hash(source, files, classes)
    index = {"corruption": corruption, "severity": int(severity), "source": str(source), "images": len(files),
             "bytes": total, "listing": listing_hash(files, classes), "content": content}
    write_json(index, out)
    return index


def read_set_index(path: str | Path) -> dict:
    return read_json_file(path, "an image-set index", lambda index: isinstance(index, dict) and set(INDEX_KEYS) <= set(index),
                          f"keys {', '.join(INDEX_KEYS)}")
