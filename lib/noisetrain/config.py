"""Loading, validating and expanding the pipeline configuration.

The schema (``config/schema.yaml``) is the single source of the keys, their types and their
defaults. ``validate_config`` fills defaults and turns the first violation into one line that
names the key and what was expected, so a malformed config fails before any job starts.
"""

from __future__ import annotations

import copy
import hashlib
import json
import math
import re
from pathlib import Path
from typing import Any

import jsonschema
import yaml

from noisetrain import config_imagenet
from noisetrain.data.corruption_names import MNIST_C_CORRUPTIONS
from noisetrain.errors import ConfigError

REPO_ROOT = Path(__file__).resolve().parents[2]
SCHEMA_PATH = REPO_ROOT / "config" / "schema.yaml"
# In robustness.methods: the sweep's best single-sigma GNT model, known only once the sweep is
# evaluated (same value as noisetrain.report.sweep_choice.BEST_GNT, not imported: that package is heavy).
BEST_GNT = "best_gnt"
# Method kinds trained from scratch with train.vanilla's schedule; every other kind is fine-tuned
# from the vanilla model with train.finetune's. The adversarial-training baselines of Table 11 are
# compared "against their own vanilla" (appendix E): trained the way their authors did, from scratch.
FROM_SCRATCH_KINDS = frozenset({"vanilla", "pgd_at", "ddn_at"})
_FRACTION_TOLERANCE = 1e-6


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


def _where(path) -> str:
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
    types = [error.validator_value] if isinstance(error.validator_value, str) else error.validator_value
    if error.validator == "type" and "integer" in types and isinstance(value, float) and value.is_integer():
        message += f" (a whole number is meant: write {int(value)}, without the decimal point)"
    return f"config error at '{_where(error.absolute_path)}': {message}"


def _check_finite(value: Any, path: tuple = ()) -> None:
    """YAML reads .inf, -.inf and .nan as floats that pass every minimum/maximum check."""
    if isinstance(value, float) and not math.isfinite(value):
        raise ConfigError(
            f"config error at '{_where(path)}': {value} is not a finite number "
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


def validate_config(config: dict, schema: dict | None = None) -> dict:
    """Return a validated copy of ``config`` with every default filled in.

    Raises ConfigError with a one-line message naming the offending key.
    """
    if not isinstance(config, dict):
        raise ConfigError(f"config error: expected a mapping at the top level, got {type(config).__name__}")
    schema = schema or load_schema()
    _check_finite(config)
    _check_method_names(config, schema)
    resolved = copy.deepcopy(config)
    validator = _Validator(schema)
    # Validate twice: the first pass fills defaults (which may create nested mappings whose own
    # defaults are filled as they are visited); the second judges the completed config.
    list(validator.iter_errors(resolved))
    errors = sorted(validator.iter_errors(resolved), key=lambda e: (len(e.absolute_path), e.path))
    if errors:
        raise ConfigError(_describe(jsonschema.exceptions.best_match(errors)))
    # Checks across keys, on the schema-checked config (expand_methods raises on name clashes).
    config_imagenet.check_architecture(resolved)
    if config_imagenet.is_image_folder_dataset(resolved):
        config_imagenet.check_imagenet_config(resolved)
    else:
        _check_small_data_study(resolved)
    return resolved


def method_entry(entry: dict, where: str = "method") -> dict:
    """One method entry with the schema's defaults filled in, checked against the method schema
    alone (none of the study's checks): what a tool reads of one method of a config whose data is
    not on this machine (bench/ reads config/imagenet.yaml's ANT this way)."""
    schema = load_schema()
    validator = _Validator({**schema["$defs"]["method"], "$defs": schema["$defs"]})
    resolved = copy.deepcopy(entry)
    list(validator.iter_errors(resolved))  # fills the defaults, as validate_config's first pass
    errors = list(validator.iter_errors(resolved))
    if errors:
        raise ConfigError(f"{where}: {_describe(jsonschema.exceptions.best_match(errors))}")
    return resolved


def _check_small_data_study(config: dict) -> None:
    """The small datasets' study: sweeps, eps choices, replicates, robustness and corruptions."""
    config_imagenet.check_small_data_keys(config)
    _check_seeds(config)
    methods = expand_methods(config)
    _check_auto_eps(methods, config)
    _check_eps_search(methods, config)
    _check_robustness_methods(methods, config)
    _check_ant_fractions(methods)
    _check_corruption_names(config)
    _check_dataset_root(config)


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


def _check_eps_search(methods: dict[str, dict], config: dict) -> None:
    """eps 'search' takes the eps that the eps search chose, so that search must be configured."""
    wanting = [f"methods.{name}.eps" for name, spec in methods.items() if spec["kind"] == "ant" and spec["eps"] == "search"]
    if config["robustness"]["an_eps"] == "search":
        wanting.append("robustness.an_eps")
    if wanting and not config["eps_search"]:
        raise ConfigError(f"config error at '{wanting[0]}': 'search' takes the eps chosen by eps_search, which is "
                          "not configured; add eps_search {method, candidates} or give eps as a number or 'auto'")


def _check_seeds(config: dict) -> None:
    """Replicates train every listed method once per seed; fine-tuned ones start from the vanilla
    model of their own seed, so vanilla must be among them."""
    seeds = config["seeds"]
    if not seeds["methods"]:
        return
    if config["seed"] not in seeds["values"] or len(set(seeds["values"])) != len(seeds["values"]):
        raise ConfigError(f"config error at 'seeds.values': {seeds['values']} must list the study's seed "
                          f"({config['seed']}) and each other seed once")
    has_sweep = bool(config["sigma_sweep"]) or any(spec["kind"] == "gnt" for spec in config["methods"].values())
    for index, name in enumerate(seeds["methods"]):
        if (name == BEST_GNT and not has_sweep) or (name != BEST_GNT and name not in config["methods"]):
            known = ", ".join([*config["methods"], BEST_GNT] if has_sweep else config["methods"])
            raise ConfigError(f"config error at 'seeds.methods.{index}': {name!r} is not a method of the study "
                              f"to replicate; known: {known}")
    if "vanilla" not in seeds["methods"]:
        raise ConfigError("config error at 'seeds.methods': fine-tuned replicates start from the vanilla model of "
                          "their own seed; add vanilla to the list")


def _check_robustness_methods(methods: dict[str, dict], config: dict) -> None:
    """Every measured model must be trained; best_gnt needs a sweep to choose from."""
    chosen = config["robustness"]["methods"]
    if chosen == "all":
        return
    has_sweep = any(spec["kind"] == "gnt" for spec in methods.values())
    for index, name in enumerate(chosen):
        where = f"config error at 'robustness.methods.{index}'"
        if name == BEST_GNT and not has_sweep:
            raise ConfigError(
                f"{where}: '{BEST_GNT}' is the sigma sweep's best model, but no single-sigma GNT model "
                "is configured; add sigma_sweep values or remove it"
            )
        if name != BEST_GNT and name not in methods:
            known = ", ".join([*methods, BEST_GNT] if has_sweep else methods)
            raise ConfigError(f"{where}: unknown method '{name}'; known: {known}")


def _check_ant_fractions(methods: dict[str, dict]) -> None:
    """The batch split of ANT, checked now rather than when its training job starts."""
    for name, spec in methods.items():
        fractions = spec.get("fractions") if spec["kind"] == "ant" else None
        if fractions is None:
            continue
        where = f"config error at 'methods.{name}.fractions"
        total = math.fsum(fractions.values())
        if abs(total - 1.0) > _FRACTION_TOLERANCE:
            parts = " + ".join(f"{part} {value:g}" for part, value in fractions.items())
            raise ConfigError(f"{where}': must sum to 1, got {total:.8g} ({parts}); adjust them or set fractions: null")
        if fractions["stylized"] > 0 and spec["stylized_path"] is None:
            raise ConfigError(
                f"{where}.stylized': {fractions['stylized']:g} > 0 needs stylized_path (an .npz of stylized "
                "training images); set stylized_path or make fractions.stylized 0"
            )
        if fractions["replay"] > 0 and not spec["replay"]:
            raise ConfigError(
                f"{where}.replay': {fractions['replay']:g} > 0 needs replay: true (without it there is no bank "
                "of earlier generators to replay); set replay: true or make fractions.replay 0"
            )


def _check_corruption_names(config: dict) -> None:
    """Corruption names become file names and select MNIST-C functions: only the known ones, once."""
    names = config["corruptions"]["names"]
    for index, name in enumerate(names):
        where = f"config error at 'corruptions.names.{index}'"
        if name not in MNIST_C_CORRUPTIONS:
            raise ConfigError(f"{where}: unknown MNIST-C corruption {name!r}; known: {', '.join(MNIST_C_CORRUPTIONS)}")
        if name in names[:index]:
            raise ConfigError(f"{where}: '{name}' is listed twice; list every corruption once")


def _check_dataset_root(config: dict) -> None:
    """torchvision reads MNIST from root/MNIST/raw (and downloads it there): without a root the
    data job would fail, or download into the working directory."""
    dataset = config["dataset"]
    if dataset["name"] == "mnist" and dataset["root"] is None:
        raise ConfigError(
            "config error at 'dataset.root': MNIST needs root, the folder holding MNIST/raw/ "
            "(with download: true, the folder to download into), e.g. root: data"
        )


def check_device(config: dict, cuda_available: bool) -> None:
    """device: cuda on a machine without a visible GPU fails every job; say so before any runs.
    The caller passes torch.cuda.is_available() so that this module never imports torch."""
    if config.get("device") == "cuda" and not cuda_available:
        raise ConfigError(
            "config error at 'device': 'cuda' but no GPU is visible here (torch.cuda.is_available() "
            "is False); use device: auto or cpu, or run on a machine with a GPU"
        )


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
                    f"config error at '{_where((*path, key))}': key given twice in {mark.name} (lines "
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
            return yaml.load(handle, Loader=_StrictLoader) or {}
    except yaml.YAMLError as exc:
        raise ConfigError(f"config error: {path} is not valid YAML ({exc.__class__.__name__})") from exc


def check_config_files(paths: list[str]) -> None:
    """Strict-load every --configfile: Snakemake reads them with a loader that lets duplicates through."""
    for path in paths:
        load_yaml_strict(path)


def load_config(path: str | Path, overrides: dict | None = None) -> dict:
    """Read a YAML config, merge ``overrides`` into it and validate (for CLIs and tests)."""
    config = load_yaml_strict(path)
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


def eps_candidate_name(method: str, eps: float) -> str:
    """Method name of one candidate of the eps search, e.g. ('ant1x1', 4) -> 'ant1x1_eps4'."""
    return f"{method}_eps{eps:g}"


def replicate_name(method: str, seed: int) -> str:
    """Method name of a model trained again with another seed, e.g. ('ant1x1', 1) -> 'ant1x1_seed1'."""
    return f"{method}_seed{seed}"


def expand_methods(config: dict, every_replicate: bool = False) -> dict[str, dict]:
    """All methods of the study: the named ones, one ``gnt_s<sigma>`` per swept sigma, one
    ``<method>_eps<eps>`` per candidate of the eps search, and one ``<method>_seed<k>`` per
    replicate seed of the methods listed under ``seeds``. The replicates of the sweep's best
    model are known only once the sweep is chosen: ``every_replicate`` names those of every
    sweep point (for the wildcard and for building any of them), else they are left out."""
    methods = {name: dict(spec) for name, spec in config["methods"].items()}
    for sigma in config.get("sigma_sweep", []):
        name = sweep_name(sigma)
        if name in methods and methods[name] != {"kind": "gnt", "sigma": sigma}:
            raise ConfigError(f"config error at 'methods.{name}': clashes with sigma_sweep entry {sigma}")
        methods[name] = {"kind": "gnt", "sigma": float(sigma)}
    _check_vanilla(methods)
    methods.update(_eps_candidates(config, methods))
    methods.update(_replicates(config, methods, every_replicate))
    return methods


def _check_vanilla(methods: dict[str, dict]) -> None:
    fine_tuned = [name for name, spec in methods.items() if not trains_from_scratch(spec)]
    if fine_tuned and "vanilla" not in methods:
        raise ConfigError(
            "config error at 'methods': fine-tuned methods "
            f"({', '.join(fine_tuned)}) start from the vanilla model; add 'vanilla: {{kind: vanilla}}'"
        )


def _eps_candidates(config: dict, methods: dict[str, dict]) -> dict[str, dict]:
    search = config.get("eps_search")
    if not search:
        return {}
    base = methods.get(search["method"])
    if base is None or base["kind"] != "ant":
        ants = [m for m, spec in methods.items() if spec["kind"] == "ant"]
        raise ConfigError(f"config error at 'eps_search.method': {search['method']!r} is not an ANT method; "
                          f"ANT methods: {', '.join(ants) or 'none'}")
    return {eps_candidate_name(search["method"], eps): {**base, "eps": float(eps), "candidate_of": search["method"]}
            for eps in search["candidates"]}


def _replicates(config: dict, methods: dict[str, dict], every_replicate: bool) -> dict[str, dict]:
    seeds = config.get("seeds") or {}
    extra = [seed for seed in seeds.get("values", []) if seed != config["seed"]]
    listed = list(seeds.get("methods", []))
    if BEST_GNT in listed:
        listed.remove(BEST_GNT)
        if every_replicate:
            listed += [m for m, spec in methods.items() if spec["kind"] == "gnt"]
    return {replicate_name(method, seed): {**methods[method], "seed": seed, "replicate_of": method}
            for method in listed for seed in extra}


def trains_from_scratch(spec: dict) -> bool:
    """Whether a method trains from scratch (vanilla's schedule, no initial model) or is fine-tuned
    from the vanilla model."""
    return spec["kind"] in FROM_SCRATCH_KINDS


def train_spec(config: dict, method: str) -> dict:
    """Everything one training job needs: the method, its schedule and the shared settings."""
    spec = dict(expand_methods(config, every_replicate=True)[method])
    # The method's own budget (schedule) replaces keys of the shared schedule of its kind.
    shared = config["train"]["vanilla" if trains_from_scratch(spec) else "finetune"]
    schedule = {**shared, **spec.pop("schedule", {})}
    # The initial weights are the job's input, not part of its spec; a method's own network replaces the study's.
    spec.pop("init_weights", None)
    architecture = spec.pop("architecture", None)
    if spec["kind"] != "ant" and spec.get("stylized_path", "") is None:
        del spec["stylized_path"]  # pixel noise without +SIN: the spec as before the key existed
    return {
        "method": method,
        **spec,
        **schedule,
        "batch_size": config["train"]["batch_size"],
        "clean_fraction": config["train"]["clean_fraction"],
        "divergence_guard": config["train"]["divergence_guard"],
        "model": architecture or config["model"],
        "seed": spec.get("seed", config["seed"]),
        # Streamed image folders: the training crop (None: the network's input size).
        **({"crop_size": config["train"]["crop_size"]} if config_imagenet.is_image_folder_dataset(config) else {}),
    }


def init_method(spec: dict) -> str | None:
    """The model a method is fine-tuned from: the vanilla model of the same seed (None: from scratch)."""
    if trains_from_scratch(spec):
        return None
    return replicate_name("vanilla", spec["seed"]) if "replicate_of" in spec else "vanilla"


def spec_hash(spec: Any) -> str:
    """Short stable hash of a JSON-serialisable spec, recorded as provenance."""
    text = json.dumps(spec, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(text.encode()).hexdigest()[:12]
