"""Method kinds: everything the pipeline asks about a kind of training method outside its training
step (trained from scratch or fine-tuned, which datasets, label, paper row, Table 4's brackets, the
keys Fig 2 and Table 16 read, the sigma sweep, its own config checks), one entry per kind.

Importing this package registers every kind: each module beside ``registry`` holds the entries of
one family (how to add one: :mod:`noisetrain.methods.registry`). No torch, pandas or matplotlib:
Snakemake asks while it builds the job graph.
"""

from importlib import import_module
from pkgutil import iter_modules

from noisetrain.methods.registry import (
    KINDS,
    MethodKind,
    eps_choice,
    fine_tuned,
    has_kind,
    image_folder_kinds,
    in_sigma_sweep,
    kind_of,
    label,
    noise_keys,
    paper_model,
    register_kind,
    trains_from_scratch,
)

__all__ = [
    "KINDS",
    "MethodKind",
    "eps_choice",
    "fine_tuned",
    "has_kind",
    "image_folder_kinds",
    "in_sigma_sweep",
    "kind_of",
    "label",
    "noise_keys",
    "paper_model",
    "register_kind",
    "trains_from_scratch",
]

for _module in iter_modules(__path__):
    if _module.name != "registry":
        import_module(f"{__name__}.{_module.name}")
