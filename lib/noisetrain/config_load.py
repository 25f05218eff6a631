"""Reading a config: strict YAML (a key given twice is an error), merging config files the way
Snakemake does, and the schema (``lib/noisetrain/config_schema.yaml``: the single source of the keys, their
types and their defaults) with every default filled in. The checks across keys are
:mod:`noisetrain.config_validate`'s.
"""

from __future__ import annotations

import copy
import math
import re
from pathlib import Path
from typing import Any

import jsonschema
import yaml

from noisetrain.config_names import BEST_GNT
from noisetrain.errors import ConfigError

REPO_ROOT = Path(__file__).resolve().parents[2]
SCHEMA_PATH = Path(__file__).with_name("config_schema.yaml")


def _with_defaults(validator_class):
    """Extend a validator so that ``properties`` fills in each missing key's ``default``, and
    ``integer`` means an int: draft 2020-12 counts 25.0 as an integer, which would reach
    ``range(epochs)`` as a float."""
    validate_properties = validator_class.VALIDATORS["properties"]

    def set_defaults(validator, properties, instance, schema):
        if isinstance(instance, dict):
            for name, subschema in properties.items():
                if "default" in subschema and name not in instance:
                    instance[name] = copy.deepcopy(subschema["default"])
        yield from validate_properties(validator, properties, instance, schema)

    def is_int(checker, instance):
        return isinstance(instance, int) and not isinstance(instance, bool)

    type_checker = validator_class.TYPE_CHECKER.redefine("integer", is_int)
    return jsonschema.validators.extend(validator_class, {"properties": set_defaults}, type_checker=type_checker)


_Validator = _with_defaults(jsonschema.Draft202012Validator)


def load_schema(path: Path = SCHEMA_PATH) -> dict:
    with open(path) as handle:
        return yaml.safe_load(handle)


def key_path(path) -> str:
    """A key's dotted path, as config errors name it."""
    return ".".join(str(part) for part in path) or "<top level>"


def _describe(error: jsonschema.ValidationError) -> str:
    message = error.message
    value = error.instance
    if error.validator == "type" and isinstance(value, str):
        try:
            float(value)
            message += (" (a number given as text: YAML reads 1e-3 as text, write 1.0e-3; "
                        "snakemake --config passes nested values as text, use a config file)")
        except ValueError:
            pass
    if error.validator == "required" and not error.absolute_path:
        message += (" (a config names its dataset and methods; an overlay such as config/digits_extras.yaml adds to "
                    "a full config named before it: --configfile config/config.yaml config/digits_extras.yaml)")
    types = [error.validator_value] if isinstance(error.validator_value, str) else error.validator_value
    if error.validator == "type" and "integer" in types and isinstance(value, float) and value.is_integer():
        message += f" (a whole number is meant: write {int(value)}, without the decimal point)"
    return f"config error at '{key_path(error.absolute_path)}': {message}"


def _check_finite(value: Any, path: tuple = ()) -> None:
    """YAML reads .inf, -.inf and .nan as floats that pass every minimum/maximum check."""
    if isinstance(value, float) and not math.isfinite(value):
        raise ConfigError(
            f"config error at '{key_path(path)}': {value} is not a finite number "
            "(YAML reads .inf, -.inf and .nan as infinity and not-a-number); give a finite value"
        )
    items = value.items() if isinstance(value, dict) else enumerate(value) if isinstance(value, list) else ()
    for key, item in items:
        _check_finite(item, (*path, key))


def _check_method_names(config: dict, schema: dict) -> None:
    """Method names become file names under results/: '..' or 'a/b' would write outside it. The
    schema's propertyNames states the rule; checked here first for a message that says why."""
    rule = schema["properties"]["methods"]["propertyNames"]
    methods = config.get("methods")
    for name in methods if isinstance(methods, dict) else ():  # not a mapping: the schema says so
        if name in rule["not"]["enum"]:
            raise ConfigError(
                f"config error at 'methods': the name '{name}' is reserved ('{BEST_GNT}' stands for the "
                "sweep's best GNT model and 'all' for every method in robustness.methods); rename the method"
            )
        if not isinstance(name, str) or not re.fullmatch(rule["pattern"], name):
            raise ConfigError(
                f"config error at 'methods': the name {name!r} is not allowed; a method name is a file name "
                "under results/, so use letters, digits, '_' and '.', not starting with '.'"
            )


def _fill_and_judge(validator, instance: dict) -> list:
    # Twice: the first pass fills defaults (which may create nested mappings whose own defaults are
    # filled as they are visited); the second judges the completed instance.
    list(validator.iter_errors(instance))
    return list(validator.iter_errors(instance))


def with_defaults(config: dict, schema: dict | None = None) -> dict:
    """A copy of ``config`` checked against the schema, with every default filled in; the first
    violation is a ConfigError naming the key."""
    if not isinstance(config, dict):
        raise ConfigError(f"config error: expected a mapping at the top level, got {type(config).__name__}")
    schema = schema or load_schema()
    _check_finite(config)
    _check_method_names(config, schema)
    resolved = copy.deepcopy(config)
    errors = sorted(_fill_and_judge(_Validator(schema), resolved), key=lambda e: (len(e.absolute_path), e.path))
    if errors:
        raise ConfigError(_describe(jsonschema.exceptions.best_match(errors)))
    return resolved


def method_entry(entry: dict, where: str = "method") -> dict:
    """One method entry with the schema's defaults filled in, checked against the method schema
    alone (none of the study's checks): what a tool reads of one method of a config whose data is
    not on this machine (bench/ reads config/imagenet.yaml's ANT this way)."""
    schema = load_schema()
    resolved = copy.deepcopy(entry)
    errors = _fill_and_judge(_Validator({**schema["$defs"]["method"], "$defs": schema["$defs"]}), resolved)
    if errors:
        raise ConfigError(f"{where}: {_describe(jsonschema.exceptions.best_match(errors))}")
    return resolved


class _StrictLoader(yaml.SafeLoader):
    """SafeLoader that refuses a key given twice in one mapping (PyYAML's loaders, Snakemake's
    included, silently keep the last, e.g. the second of two 'ant1x1:' methods)."""

    def construct_document(self, node):
        # On the composed tree, before construction: PyYAML's merge keys ('<<: *ant') rewrite
        # mappings in place, and an override of a merged key is not a duplicate.
        _reject_duplicate_keys(node, (), set())
        return super().construct_document(node)


def _reject_duplicate_keys(node: yaml.Node, path: tuple, seen: set) -> None:
    if id(node) in seen:  # an alias of a node already checked
        return
    seen.add(id(node))
    if isinstance(node, yaml.SequenceNode):
        for index, item in enumerate(node.value):
            _reject_duplicate_keys(item, (*path, index), seen)
    if not isinstance(node, yaml.MappingNode):
        return
    first: dict[str, yaml.Node] = {}
    for key_node, value_node in node.value:
        key = key_node.value if isinstance(key_node, yaml.ScalarNode) else None
        if key is not None and key_node.tag != "tag:yaml.org,2002:merge":
            if key in first:
                mark, earlier = key_node.start_mark, first[key].start_mark
                raise ConfigError(
                    f"config error at '{key_path((*path, key))}': key given twice in {mark.name} (lines "
                    f"{earlier.line + 1} and {mark.line + 1}); YAML would keep only the last, so remove or rename one"
                )
            first[key] = key_node
        _reject_duplicate_keys(value_node, (*path, key), seen)


def load_yaml_strict(path: str | Path) -> dict:
    """Read a YAML config file, refusing duplicate keys; an empty file is an empty mapping."""
    path = Path(path)
    if not path.exists():
        raise ConfigError(f"config error: file {path} does not exist")
    try:
        with open(path) as handle:
            loaded = yaml.load(handle, Loader=_StrictLoader) or {}
    except yaml.YAMLError as exc:
        raise ConfigError(f"config error: {path} is not valid YAML ({exc.__class__.__name__})") from exc
    if not isinstance(loaded, dict):
        raise ConfigError(f"config error: {path} holds a YAML {type(loaded).__name__}, not a mapping of keys "
                          "(dataset:, methods:, ...)")
    return loaded


def check_config_files(paths: list[str]) -> None:
    """Strict-load every --configfile: Snakemake reads them with a loader that lets duplicates through."""
    for path in paths:
        load_yaml_strict(path)


def merge(base: dict, update: dict) -> dict:
    """Merge mappings recursively the way Snakemake merges --configfile (lists are replaced)."""
    merged = copy.deepcopy(base)
    for key, value in update.items():
        if isinstance(value, dict) and isinstance(merged.get(key), dict):
            merged[key] = merge(merged[key], value)
        else:
            merged[key] = copy.deepcopy(value)
    return merged
