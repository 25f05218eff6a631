"""An image set's index: its content hash changes with what the images are (bytes, order, labels),
not with where they lie, and a missing file or a malformed index is named."""

import hashlib
import json
import shutil

import pytest

from noisetrain.data.set_index import content_hash, listing_hash, read_set_index, write_set_index
from noisetrain.errors import DataError, InputError

CLASSES = ["n01", "n02"]
FILES = ["n01/a.JPEG", "n01/b.JPEG", "n02/c.JPEG"]


@pytest.fixture
def tree(tmp_path):
    root = tmp_path / "set"
    for i, name in enumerate(FILES):
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_bytes(bytes([i]) * (10 + i))
    return root


def test_content_hash_equals_a_hand_computed_digest(tree):
    digest = hashlib.sha256()
    parts = ["classes", *CLASSES, "files"]
    for i, name in enumerate(FILES):
        data = bytes([i]) * (10 + i)
        parts += [name, str(len(data)), hashlib.sha256(data).hexdigest()]
    for part in parts:
        digest.update(part.encode() + b"\0")
    assert content_hash(tree, FILES, CLASSES) == (digest.hexdigest(), 10 + 11 + 12)


def test_regenerated_bytes_change_the_hash_and_a_copy_keeps_it(tree, tmp_path):
    before, _ = content_hash(tree, FILES, CLASSES)
    copy = tmp_path / "copy"
    shutil.copytree(tree, copy)
    assert content_hash(copy, FILES, CLASSES)[0] == before  # equal bytes elsewhere: the same images
    (copy / FILES[1]).write_bytes(b"\x09" * 11)  # same name, same size, other pixels
    assert content_hash(copy, FILES, CLASSES)[0] != before
    assert content_hash(tree, FILES[::-1], CLASSES)[0] != before  # row i of the cache is file i
    assert content_hash(tree, FILES, CLASSES[::-1])[0] != before  # labels are class indices


def test_index_round_trip_and_listing_check(tree, tmp_path):
    out = tmp_path / "index" / "fog" / "3.json"
    index = write_set_index(tree, FILES, CLASSES, "fog", 3, out)
    assert read_set_index(out) == index == json.loads(out.read_text())
    assert index["images"] == 3 and index["bytes"] == 33 and index["source"] == str(tree)
    assert index["listing"] == listing_hash(FILES, CLASSES) != listing_hash(FILES[:2], CLASSES)
    assert index["content"] == content_hash(tree, FILES, CLASSES)[0]


def test_missing_file_and_bad_index_are_named(tree, tmp_path):
    (tree / FILES[2]).unlink()
    with pytest.raises(DataError, match=r"cannot read .*n02/c\.JPEG"):
        write_set_index(tree, FILES, CLASSES, "clean", 0, tmp_path / "i.json")
    assert not (tmp_path / "i.json").exists()
    with pytest.raises(InputError, match="lists no files"):
        write_set_index(tree, [], CLASSES, "clean", 0, tmp_path / "i.json")
    with pytest.raises(InputError, match="not one string"):
        content_hash(tree, "n01/a.JPEG", CLASSES)
    with pytest.raises(DataError, match="does not exist"):
        read_set_index(tmp_path / "absent.json")
    (tmp_path / "bad.json").write_text(json.dumps({"content": "x"}))
    with pytest.raises(DataError, match="is not an image-set index"):
        read_set_index(tmp_path / "bad.json")
