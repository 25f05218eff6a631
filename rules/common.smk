# Helpers shared by every .smk file: the study's names, paths and per-job parameters.
import json

import noisetrain
from noisetrain.config import expand_methods, train_spec

DATASET = config["dataset"]["name"]
METHODS = expand_methods(config)
CORRUPTIONS = config["corruptions"]["names"]
# Absolute, so that `snakemake -d OTHER_DIR` writes results elsewhere and still finds the code.
SCRIPTS = f"{workflow.basedir}/workflow_scripts"
CODE_VERSION = noisetrain.__version__


def corrupted_sets(wildcards=None):
    return expand("results/{dataset}/data/corrupted/{corruption}.npz", dataset=DATASET, corruption=CORRUPTIONS)


def eval_records(wildcards=None):
    return expand(
        "results/{dataset}/eval/{method}/{metric}.json", dataset=DATASET, method=METHODS, metric=["clean", "corruptions"]
    )


def spec_json(wildcards):
    return json.dumps(train_spec(config, wildcards.method), sort_keys=True)


def init_model(wildcards):
    """Fine-tuning starts from the vanilla model (paper section 4); vanilla starts from scratch."""
    if METHODS[wildcards.method]["kind"] == "vanilla":
        return {}
    return {"init": f"results/{wildcards.dataset}/models/vanilla.pt"}


def init_arg(wildcards, input):
    return f"--init {input.init}" if "init" in input.keys() else ""


def table_targets():
    from noisetrain.report import TABLE_NAMES

    return expand("results/{dataset}/tables/{name}.{ext}", dataset=DATASET, name=TABLE_NAMES, ext=["md", "tex"])


def figure_targets():
    names = ["corruption_examples"]
    if config["sigma_sweep"]:
        names += ["fig6_accuracy_vs_sigma", "fig7_noise_levels"]
    return expand("results/{dataset}/figures/{name}.{ext}", dataset=DATASET, name=names, ext=["png", "pdf"])


def final_targets():
    return table_targets() + figure_targets()
