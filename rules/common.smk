# Helpers shared by every .smk file: the study's names, paths and per-job parameters.
# Building the job graph imports only light modules (no torch, pandas or matplotlib).
import json

import noisetrain
from noisetrain.config import expand_methods, train_spec, trains_from_scratch
from noisetrain.report.outputs import TABLE_NAMES
from noisetrain.report.sweep_choice import BEST_GNT, read_choice

DATASET = config["dataset"]["name"]
METHODS = expand_methods(config)
CORRUPTIONS = config["corruptions"]["names"]
SWEEP = [m for m, spec in METHODS.items() if spec["kind"] == "gnt"]
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


def eval_records(wildcards=None):
    robust = ours("eval/{method}/{metric}.json", method=measured_methods(), metric=["noise_robustness", "adversarial"])
    return accuracy_records() + robust


def spec_json(wildcards):
    return json.dumps(train_spec(config, wildcards.method), sort_keys=True)


def uses_sweep_choice(method):
    spec = METHODS[method]
    return spec["kind"] == "ant" and spec["eps"] == "auto"


def train_inputs(wildcards):
    """Fine-tuning starts from the vanilla model (paper section 4); vanilla and the adversarial-
    training baselines start from scratch. ANT with eps 'auto' also waits for the sweep's choice."""
    inputs = {}
    if not trains_from_scratch(METHODS[wildcards.method]):
        inputs["init"] = results("models/vanilla.pt").format(dataset=wildcards.dataset)
    if uses_sweep_choice(wildcards.method):
        inputs["sweep_choice"] = SWEEP_CHOICE.format(dataset=wildcards.dataset)
    return inputs


def robustness_inputs(wildcards):
    """The fresh adversarial-noise generators train at ANT's eps chosen from the sweep ('auto')."""
    if config["robustness"]["an_eps"] == "auto":
        return {"sweep_choice": SWEEP_CHOICE.format(dataset=wildcards.dataset)}
    return {}


def table_inputs(wildcards):
    """The tables show the sweep's best GNT model as the GNT row."""
    return {"sweep_choice": SWEEP_CHOICE.format(dataset=wildcards.dataset)} if SWEEP else {}


def optional_args(wildcards, input):
    """--init / --sweep-choice for the inputs a job has, each path quoted for the shell."""
    flags = {"init": "--init", "sweep_choice": "--sweep-choice"}
    return " ".join(f"{flag} {shell_quote(input[key])}" for key, flag in flags.items() if key in input.keys())


def shell_quote(text):
    import shlex

    return shlex.quote(str(text))


def ant_methods(**criteria):
    """ANT methods whose spec matches every criterion, e.g. kernel='3x3'."""
    return [m for m, s in METHODS.items() if s["kind"] == "ant" and all(s.get(k) == v for k, v in criteria.items())]


def epsilon_example_methods():
    """Rows of Figs 3 and 8: vanilla, the sweep's best GNT model, ANT 1x1 (those measured)."""
    measured = measured_methods()
    wanted = ["vanilla", chosen_model(), "ant1x1"]
    return [m for m in wanted if m in measured]


def table_targets():
    return ours("tables/{name}.{ext}", name=TABLE_NAMES, ext=["md", "tex", "html"])


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
