# Helpers shared by every .smk file: the study's names, paths and per-job parameters.
import json
import os

import noisetrain
from noisetrain.config import expand_methods, train_spec
from noisetrain.report import TABLE_NAMES

DATASET = config["dataset"]["name"]
METHODS = expand_methods(config)
CORRUPTIONS = config["corruptions"]["names"]
# Absolute, so that `snakemake -d OTHER_DIR` writes results elsewhere and still finds the code.
SCRIPTS = f"{workflow.basedir}/workflow_scripts"
CODE_VERSION = noisetrain.__version__


def corrupted_sets(wildcards=None):
    return expand("results/{dataset}/data/corrupted/{corruption}.npz", dataset=DATASET, corruption=CORRUPTIONS)


def eval_records(wildcards=None):
    accuracy = expand("results/{dataset}/eval/{method}/{metric}.json", dataset=DATASET, method=METHODS, metric=["clean", "corruptions"])
    robust = expand(
        "results/{dataset}/eval/{method}/{metric}.json",
        dataset=DATASET,
        method=robustness_methods(),
        metric=["noise_robustness", "adversarial"],
    )
    return accuracy + robust


def spec_json(wildcards):
    return json.dumps(train_spec(config, wildcards.method), sort_keys=True)


def uses_auto_eps(method):
    spec = METHODS[method]
    return spec["kind"] == "ant" and spec["eps"] == "auto"


def sweep_records(wildcards=None):
    return expand(
        "results/{dataset}/eval/{method}/corruptions.json",
        dataset=DATASET,
        method=[m for m, spec in METHODS.items() if spec["kind"] == "gnt"],
    )


def train_inputs(wildcards):
    """Fine-tuning starts from the vanilla model (paper section 4); vanilla starts from scratch.
    ANT with eps 'auto' also waits for the eps chosen from the sigma sweep."""
    inputs = {}
    if METHODS[wildcards.method]["kind"] != "vanilla":
        inputs["init"] = f"results/{wildcards.dataset}/models/vanilla.pt"
    if uses_auto_eps(wildcards.method):
        inputs["eps"] = f"results/{wildcards.dataset}/selection/ant_eps.json"
    return inputs


BEST_GNT = "best_gnt"  # stands for the sweep's best sigma, known only once the sweep is evaluated
SWEEP = [m for m, spec in METHODS.items() if spec["kind"] == "gnt"]


def robustness_methods():
    """Models whose robustness is measured: the configured list or every model ('all'), and
    always the sweep's best GNT model (Tables 2, 3, 5 and Figs 3, 8 show it)."""
    chosen = config["robustness"]["methods"]
    chosen = list(METHODS) if chosen == "all" else list(chosen)
    return chosen + [BEST_GNT] if SWEEP and BEST_GNT not in chosen else chosen


def robustness_inputs(wildcards):
    """The model (for best_gnt: the sweep's models and the file naming the best); fresh
    adversarial-noise generators train at ANT's eps chosen from the sweep ('auto')."""
    selection = f"results/{wildcards.dataset}/selection/ant_eps.json"
    inputs = {}
    if wildcards.method == BEST_GNT:
        inputs["selection"] = selection
        inputs["sweep"] = expand("results/{dataset}/models/{method}.pt", dataset=wildcards.dataset, method=SWEEP)
    else:
        inputs["model"] = f"results/{wildcards.dataset}/models/{wildcards.method}.pt"
    if config["robustness"]["an_eps"] == "auto":
        inputs["eps"] = selection
    return inputs


def robustness_model_args(wildcards, input):
    if wildcards.method == BEST_GNT:
        return f"--model {os.path.dirname(input.sweep[0])} --best-of {input.selection}"
    return f"--model {input.model}"


def optional_args(wildcards, input):
    flags = {"init": "--init", "eps": "--eps-file"}
    return " ".join(f"{flag} {input[key]}" for key, flag in flags.items() if key in input.keys())


def ant_methods(**criteria):
    """ANT methods whose spec matches every criterion, e.g. kernel='3x3'."""
    return [m for m, s in METHODS.items() if s["kind"] == "ant" and all(s.get(k) == v for k, v in criteria.items())]


def table_targets():
    return expand("results/{dataset}/tables/{name}.{ext}", dataset=DATASET, name=TABLE_NAMES, ext=["md", "tex"])


def figure_targets():
    names = ["corruption_examples"]
    if config["sigma_sweep"]:
        names += ["fig6_accuracy_vs_sigma", "fig7_noise_levels"]
    if "ant1x1" in METHODS:
        names += ["fig4_adversarial_noise"]
    if any(spec["kind"] == "gnt" for spec in METHODS.values()):
        names += ["fig3_gaussian_eps_examples", "fig8_eps_examples"]
    return expand("results/{dataset}/figures/{name}.{ext}", dataset=DATASET, name=names, ext=["png", "pdf"])


def final_targets():
    return table_targets() + figure_targets()
