"""Loading, validating and expanding the pipeline configuration.

The schema (``config/schema.yaml``) is the single source of the keys, their types and their
defaults. ``validate_config`` fills defaults and turns the first violation into one line that
names the key and what was expected, so a malformed config fails before any job starts.
"""

from __future__ import annotations

import copy
import hashlib
import json
from pathlib import Path
from typing import Any

import jsonschema
import yaml

REPO_ROOT = Path(__file__).resolve().parents[2]
SCHEMA_PATH = REPO_ROOT / "config" / "schema.yaml"


class ConfigError(ValueError):
    """A configuration value is missing, unknown or of the wrong type."""


def _with_defaults(validator_class):
    """Extend a validator so that ``properties`` fills in each missing key's ``default``."""
    validate_properties = validator_class.VALIDATORS["properties"]

    def set_defaults(validator, properties, instance, schema):
        if isinstance(instance, dict):
            for name, subschema in properties.items():
                if "default" in subschema and name not in instance:
                    instance[name] = copy.deepcopy(subschema["default"])
        yield from validate_properties(validator, properties, instance, schema)

    return jsonschema.validators.extend(validator_class, {"properties": set_defaults})


_Validator = _with_defaults(jsonschema.Draft202012Validator)


def load_schema(path: Path = SCHEMA_PATH) -> dict:
    with open(path) as handle:
        return yaml.safe_load(handle)


def _describe(error: jsonschema.ValidationError) -> str:
    where = ".".join(str(part) for part in error.absolute_path) or "<top level>"
    message = error.message
    value = error.instance
    if error.validator == "type" and isinstance(value, str):
        try:
            float(value)
            message += " (a number given as text: YAML reads 1e-3 as text, write 1.0e-3; snakemake --config passes nested values as text, use a config file)"
        except ValueError:
            pass
    return f"config error at '{where}': {message}"


def validate_config(config: dict, schema: dict | None = None) -> dict:
    """Return a validated copy of ``config`` with every default filled in.

    Raises ConfigError with a one-line message naming the offending key.
    """
    if not isinstance(config, dict):
        raise ConfigError(f"config error: expected a mapping at the top level, got {type(config).__name__}")
    resolved = copy.deepcopy(config)
    validator = _Validator(schema or load_schema())
    # Validate twice: the first pass fills defaults (which may create nested mappings whose own
    # defaults are filled as they are visited); the second judges the completed config.
    list(validator.iter_errors(resolved))
    errors = sorted(validator.iter_errors(resolved), key=lambda e: (len(e.absolute_path), e.path))
    if errors:
        raise ConfigError(_describe(jsonschema.exceptions.best_match(errors)))
    _check_auto_eps(expand_methods(resolved), resolved)  # name clashes are config errors too
    return resolved


def _check_auto_eps(methods: dict[str, dict], config: dict) -> None:
    """eps 'auto' is chosen from the sigma sweep, so it needs single-sigma GNT models."""
    auto = [f"methods.{name}.eps" for name, spec in methods.items() if spec["kind"] == "ant" and spec["eps"] == "auto"]
    if config["robustness"]["an_eps"] == "auto":
        auto.append("robustness.an_eps")
    if auto and not any(spec["kind"] == "gnt" for spec in methods.values()):
        raise ConfigError(
            f"config error at '{auto[0]}': 'auto' chooses eps from the sigma sweep, but no single-sigma "
            "GNT model is configured; add sigma_sweep values or give eps as a number"
        )


def load_config(path: str | Path, overrides: dict | None = None) -> dict:
    """Read a YAML config, merge ``overrides`` into it and validate (for CLIs and tests)."""
    path = Path(path)
    if not path.exists():
        raise ConfigError(f"config error: file {path} does not exist")
    try:
        with open(path) as handle:
            config = yaml.safe_load(handle) or {}
    except yaml.YAMLError as exc:
        raise ConfigError(f"config error: {path} is not valid YAML ({exc.__class__.__name__})") from exc
    if overrides:
        config = merge(config, overrides)
    return validate_config(config)


def merge(base: dict, update: dict) -> dict:
    """Merge mappings recursively the way Snakemake merges --configfile (lists are replaced)."""
    merged = copy.deepcopy(base)
    for key, value in update.items():
        if isinstance(value, dict) and isinstance(merged.get(key), dict):
            merged[key] = merge(merged[key], value)
        else:
            merged[key] = copy.deepcopy(value)
    return merged


def sweep_name(sigma: float) -> str:
    """Method name of one point of the sigma sweep, e.g. 0.5 -> 'gnt_s0.5'."""
    return f"gnt_s{sigma:g}"


def expand_methods(config: dict) -> dict[str, dict]:
    """All methods of the study: the named ones plus one ``gnt_s<sigma>`` per swept sigma."""
    methods = {name: dict(spec) for name, spec in config["methods"].items()}
    for sigma in config.get("sigma_sweep", []):
        name = sweep_name(sigma)
        if name in methods and methods[name] != {"kind": "gnt", "sigma": sigma}:
            raise ConfigError(f"config error at 'methods.{name}': clashes with sigma_sweep entry {sigma}")
        methods[name] = {"kind": "gnt", "sigma": float(sigma)}
    fine_tuned = [name for name, spec in methods.items() if spec["kind"] != "vanilla"]
    if fine_tuned and "vanilla" not in methods:
        raise ConfigError(
            "config error at 'methods': fine-tuned methods "
            f"({', '.join(fine_tuned)}) start from the vanilla model; add 'vanilla: {{kind: vanilla}}'"
        )
    return methods


def train_spec(config: dict, method: str) -> dict:
    """Everything one training job needs: the method, its schedule and the shared settings."""
    spec = expand_methods(config)[method]
    schedule = config["train"]["vanilla" if spec["kind"] == "vanilla" else "finetune"]
    return {
        "method": method,
        **spec,
        **schedule,
        "batch_size": config["train"]["batch_size"],
        "clean_fraction": config["train"]["clean_fraction"],
        "model": config["model"],
        "seed": config["seed"],
    }


def spec_hash(spec: Any) -> str:
    """Short stable hash of a JSON-serialisable spec, recorded as provenance."""
    text = json.dumps(spec, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(text.encode()).hexdigest()[:12]
