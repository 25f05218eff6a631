"""The one place files are written and checkpoints read.

Every file the pipeline writes goes through :func:`atomic_write`: a temporary file in the same
folder, then a rename, so a crash or a full disk never leaves a half-written file under the
final name, and a failed write names the file. Torch files are read only with
``weights_only=True``.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
from collections.abc import Callable
from pathlib import Path

from noisetrain.errors import CheckpointError, DataError


def atomic_write(path: str | Path, write: Callable[[Path], None], suffix: str = "") -> Path:
    """Call ``write(tmp)`` on a temporary path beside ``path``, then rename it to ``path``.

    ``suffix`` keeps an extension that a writer insists on (``np.savez`` appends ``.npz``).
    """
    path = Path(path)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp{suffix}")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        write(tmp)
        tmp.replace(path)
    except BaseException as exc:  # an interrupt too: a temporary file must never stay behind
        with contextlib.suppress(OSError):
            tmp.unlink(missing_ok=True)
        # torch.save reports a full disk as a RuntimeError ("PytorchStreamWriter failed writing file")
        if isinstance(exc, OSError | RuntimeError):
            message = str(exc).strip()
            cause = exc.strerror if isinstance(exc, OSError) and exc.strerror else (
                message.splitlines()[-1] if message else type(exc).__name__)
            raise CheckpointError(f"cannot write {path} ({cause}): check that its folder is writable "
                                  "and the disk has room; the previous file, if any, is intact") from exc
        raise
    return path


def write_json(obj, path: str | Path) -> Path:
    return atomic_write(path, lambda tmp: tmp.write_text(json.dumps(obj, indent=1, sort_keys=True)))


def read_json_file(path: str | Path, what: str, is_valid: Callable[[object], bool], expected: str) -> dict:
    """A JSON file a rule wrote (``what``: e.g. "the val image list"); a missing, unreadable or
    malformed one is a DataError naming it and the rule to rerun."""
    path = Path(path)
    try:
        obj = json.loads(path.read_text())
    except FileNotFoundError as exc:
        raise DataError(f"cannot read {what} {path}: it does not exist; run the rule that writes it (snakemake {path})") from exc
    except (OSError, ValueError) as exc:
        raise DataError(f"cannot read {what} {path} ({exc}): delete it and rerun the rule that writes it") from exc
    if not is_valid(obj):
        raise DataError(f"{path} is not {what} ({expected}): delete it and rerun the rule that writes it")
    return obj


def save_torch(obj, path: str | Path) -> Path:
    import torch

    return atomic_write(path, lambda tmp: torch.save(obj, tmp))


def load_torch(path: str | Path) -> dict:
    """torch.load with weights_only=True; a missing, truncated or foreign file is a CheckpointError."""
    import torch

    path = Path(path)
    if not path.exists():
        raise CheckpointError(f"{path} does not exist: run the rule that writes it (snakemake {path})")
    try:
        obj = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # torch raises several types for truncated or foreign files
        if refused_as_unsafe(exc, path):
            raise CheckpointError(f"{path} holds Python objects that weights-only loading refuses (loading them could run "
                                  "code): it is not a noisetrain file; delete it and rerun the rule that writes it") from exc
        raise CheckpointError(f"{path} is not a readable checkpoint ({exc.__class__.__name__}): delete it and rerun") from exc
    if not isinstance(obj, dict):
        raise CheckpointError(f"{path} holds a {type(obj).__name__}, not a noisetrain file (a mapping): "
                              "delete it and rerun the rule that writes it")
    return obj


# Pickle opcodes that import or call Python objects: what weights-only loading refuses to run.
_CALLING_OPCODES = frozenset({"GLOBAL", "STACK_GLOBAL", "REDUCE", "INST", "OBJ", "NEWOBJ", "NEWOBJ_EX"})


def refused_as_unsafe(exc: BaseException, path: str | Path) -> bool:
    """Whether torch.load(weights_only=True) refused a file for the Python objects it would build
    (loading them could run code), as opposed to a truncated or corrupt file: torch names the global
    in the legacy format; a bare pickle is read here as a pickle stream that imports or calls."""
    import pickle
    import pickletools

    if not isinstance(exc, pickle.UnpicklingError):
        return False
    if "Unsupported global" in str(exc):
        return True
    try:
        with open(path, "rb") as handle:
            return any(op.name in _CALLING_OPCODES for op, _, _ in pickletools.genops(handle))
    except Exception:  # not a pickle stream: corrupt
        return False


def file_fingerprint(path: str | Path, chunk: int = 1 << 22) -> str:
    """``file:<size in bytes>:<first 16 hex digits of the content's sha256>`` of a checkpoint file:
    what a model's cached predictions were computed from, wherever the file lies."""
    digest, size = hashlib.sha256(), 0
    try:
        with open(path, "rb") as handle:
            while block := handle.read(chunk):
                digest.update(block)
                size += len(block)
    except FileNotFoundError:
        raise CheckpointError(f"{path} does not exist: check the weights path, or download the checkpoint there") from None
    except IsADirectoryError:
        raise CheckpointError(f"{path} is a folder, not a checkpoint file") from None
    except OSError as exc:
        raise CheckpointError(f"cannot read {path} ({exc.strerror or exc})") from exc
    return f"file:{size}:{digest.hexdigest()[:16]}"


def source_hash(folder: str | Path) -> str:
    """Short hash of the Python sources under ``folder`` (names and bytes): a rule parameter, so that
    a change in that code reruns the jobs it shapes."""
    digest = hashlib.sha256()
    for path in sorted(Path(folder).rglob("*.py")):
        digest.update(f"{path.relative_to(folder)}\0".encode())
        digest.update(path.read_bytes())
    return digest.hexdigest()[:16]


def name_bytes(name: str) -> bytes:
    """The bytes of a file name as the file system holds them: names that are not UTF-8 (Python
    decodes their bytes to surrogates) hash and seed like any other, and UTF-8 names as before."""
    return name.encode("utf-8", "surrogateescape")
