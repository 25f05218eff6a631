# Helpers shared by every .smk file: the study's names, paths and per-job parameters.
# Building the job graph imports only light modules (no torch, pandas or matplotlib).
import json

import noisetrain
from noisetrain.config import expand_methods, init_method, is_image_folder_dataset, replicate_name, study_name, train_spec
from noisetrain.methods import eps_choice, kind_of
from noisetrain.report.outputs import TABLE_NAMES
from noisetrain.report.sweep_choice import BEST_GNT, read_choice, sweep_sigmas

DATASET = study_name(config)  # the results folder: results/<DATASET>/
IMAGE_FOLDERS = is_image_folder_dataset(config)
METHODS = expand_methods(config)  # every model the study trains (the best GNT model's replicates aside)
METHOD_NAMES = expand_methods(config, every_replicate=True)  # every name a model file may have
CORRUPTIONS = config["corruptions"]["names"]
SWEEP = list(sweep_sigmas(METHODS))
EPS_CANDIDATES = {m: spec["eps"] for m, spec in METHODS.items() if "candidate_of" in spec}
# The method the eps search serves, where its eps is the search's own (no factor): its model is the
# winning candidate's, which is the same training (bit-identical), not a second run of it.
SEARCHED = [
    m
    for m in {spec["candidate_of"] for spec in METHODS.values() if "candidate_of" in spec}
    if METHODS[m]["eps"] == "search" and METHODS[m].get("eps_factor", 1.0) == 1.0
]
EXTRA_SEEDS = [seed for seed in config["seeds"]["values"] if seed != config["seed"]]
# Absolute, so that `snakemake -d OTHER_DIR` writes results elsewhere and still finds the code.
SCRIPTS = f"{workflow.basedir}/workflow_scripts"
CODE_VERSION = noisetrain.__version__
GPU = 0 if config["device"] == "cpu" else 1  # slurm: --gpus=1 for the model jobs unless device: cpu


def results(path):
    """A path under this dataset's results folder; '{dataset}' stays a wildcard."""
    return f"results/{{dataset}}/{path}"


def ours(path, **wildcards):
    """The same path with this study's dataset filled in, expanded over the given wildcards."""
    return expand(results(path), dataset=DATASET, **wildcards)


def script(name):
    return f"{SCRIPTS}/{name}.py"


def logged(command):
    """A job's shell command with its output in its log. Snakemake deletes a job's log before it
    reruns the job, so every attempt is also appended to <log>.history, which it leaves alone:
    the log of a killed or failed attempt survives the rerun."""
    return (
        'echo "=== $(date -u +%Y-%m-%dT%H:%M:%SZ): attempt on $(hostname)" | tee -a {log:q}.history > {log:q}; '
        + command
        + " 2>&1 | tee -a {log:q}.history >> {log:q}"
    )


SWEEP_CHOICE = results("selection/sweep_choice.json")
EPS_CHOICE = results("selection/eps_search.json")
# Which choice record gives an eps of 'auto' or 'search'.
EPS_RECORD = {"auto": SWEEP_CHOICE, "search": EPS_CHOICE}


def chosen_model():
    """The sweep's best GNT model, once choose_sweep has run (a Snakemake checkpoint: the job
    graph is re-evaluated after it)."""
    return read_choice(checkpoints.choose_sweep.get(dataset=DATASET).output[0]).best_method


def measured_methods():
    """Models whose robustness is measured: the configured list or every model ('all'), and
    always the sweep's best GNT model (Tables 2, 3, 5 and Figs 3, 8 show it), each once."""
    named = config["robustness"]["methods"]
    named = list(METHODS) if named == "all" else list(named)
    if SWEEP and BEST_GNT not in named:
        named.append(BEST_GNT)
    return list(dict.fromkeys(chosen_model() if m == BEST_GNT else m for m in named))


def corrupted_sets(wildcards=None):
    return ours("data/corrupted/{corruption}.npz", corruption=CORRUPTIONS)


def accuracy_records(wildcards=None):
    return ours("eval/{method}/{metric}.json", method=METHODS, metric=["clean", "corruptions"])


def best_gnt_replicates():
    """The seed replicates of the sweep's best model, when seeds.methods lists best_gnt."""
    if not (SWEEP and EXTRA_SEEDS and BEST_GNT in config["seeds"]["methods"]):
        return []
    best = chosen_model()
    return [replicate_name(best, seed) for seed in EXTRA_SEEDS]


def replicate_records(wildcards=None):
    return ours("eval/{method}/{metric}.json", method=best_gnt_replicates(), metric=["clean", "corruptions"])


def eval_records(wildcards=None):
    robust = ours("eval/{method}/{metric}.json", method=measured_methods(), metric=["noise_robustness", "adversarial"])
    return accuracy_records() + replicate_records() + robust


def correct_files(wildcards=None):
    """Per-image correctness of every model, the best GNT model's replicates included (the claims)."""
    return ours("eval/{method}/correct.npz", method=[*METHODS, *best_gnt_replicates()])


def spec_json(wildcards):
    return json.dumps(train_spec(config, wildcards.method), sort_keys=True)


def train_inputs(wildcards):
    """Fine-tuning starts from the vanilla model of the same seed (paper section 4); vanilla and the
    adversarial-training baselines start from scratch. ANT with eps 'auto' or 'search' also waits
    for that choice."""
    spec = METHOD_NAMES[wildcards.method]
    inputs = {}
    init = init_method(spec)
    if init:
        inputs["init"] = results(f"models/{init}.pt").format(dataset=wildcards.dataset)
    if eps_choice(spec):
        inputs["eps_choice"] = EPS_RECORD[eps_choice(spec)].format(dataset=wildcards.dataset)
    return inputs


def robustness_inputs(wildcards):
    """The fresh adversarial-noise generators train at the eps of a choice ('auto', 'search') or a number."""
    an_eps = config["robustness"]["an_eps"]
    return {"eps_choice": EPS_RECORD[an_eps].format(dataset=wildcards.dataset)} if an_eps in EPS_RECORD else {}


def table_inputs(wildcards):
    """The tables show the sweep's best GNT model as the GNT row."""
    return {"sweep_choice": SWEEP_CHOICE.format(dataset=wildcards.dataset)} if SWEEP else {}


def optional_args(wildcards, input):
    """--init / --eps-choice / --sweep-choice for the inputs a job has, each path quoted for the shell."""
    flags = {"init": "--init", "eps_choice": "--eps-choice", "sweep_choice": "--sweep-choice"}
    return " ".join(f"{flag} {shell_quote(input[key])}" for key, flag in flags.items() if key in input.keys())


def shell_quote(text):
    import shlex

    return shlex.quote(str(text))


def generator_methods(**criteria):
    """Methods that learn noise generators (ANT) whose spec matches every criterion, e.g. kernel='3x3'."""
    return [m for m, s in METHODS.items() if kind_of(s).learns_noise and all(s.get(k) == v for k, v in criteria.items())]


def epsilon_example_methods():
    """Rows of Figs 3 and 8: vanilla, the sweep's best GNT model, ANT 1x1 (those measured)."""
    measured = measured_methods()
    wanted = ["vanilla", chosen_model(), "ant1x1"]
    return [m for m in wanted if m in measured]


def table_targets():
    return ours("tables/{name}.{ext}", name=[*TABLE_NAMES, "claims"], ext=["md", "tex", "html"])


def figure_names():
    names = ["corruption_examples"]
    if SWEEP:
        names += ["fig6_accuracy_vs_sigma", "fig7_noise_levels", "fig3_gaussian_eps_examples", "fig8_eps_examples"]
    if "ant1x1" in METHODS:
        names += ["fig4_adversarial_noise"]
    return names


def figure_targets():
    return ours("figures/{name}.{ext}", name=figure_names(), ext=["png", "pdf"])


def final_targets():
    return table_targets() + figure_targets() + ours("report/benchmarks.html")
