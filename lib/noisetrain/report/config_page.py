"""The config a study ran with, as its own report item (the front page links to it instead of
printing it): the resolved config (schema defaults filled in) as YAML, and as an HTML page."""

from __future__ import annotations

from html import escape
from pathlib import Path

import yaml

from noisetrain.storage import atomic_write


def write(config: dict, yaml_path: str | Path, html_path: str | Path, study: str) -> None:
    text = yaml.safe_dump(config, sort_keys=False, allow_unicode=True)
    atomic_write(yaml_path, lambda tmp: tmp.write_text(text))
    page = (f"<p>The config of the {escape(study)} study, after the schema filled in the defaults: what every job "
            f"of this report ran with.</p>\n<pre>{escape(text)}</pre>\n")
    atomic_write(html_path, lambda tmp: tmp.write_text(page))
