"""Seeds derived from several integers (kept free of heavy imports: every job uses it)."""

from __future__ import annotations

import hashlib


def seed_of(*parts: int) -> int:
    """A 63-bit seed from integers, different for any different tuple (not only different sums)."""
    digest = hashlib.blake2b(",".join(map(str, parts)).encode(), digest_size=8).digest()
    return int.from_bytes(digest, "little") >> 1
