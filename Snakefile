# Reproduction of Rusak et al. (ECCV 2020): noise training against common corruptions.
# Default: the whole study on scikit-learn's embedded digits. Other configs:
#   snakemake --cores N --configfile config/mnist.yaml
#   snakemake --cores N --profile slurm --configfile config/mnist.yaml
import sys

from snakemake.utils import min_version

min_version("9.0")


# The front page of `snakemake --report report.html`.
report: "report/workflow.rst"


# The library of this checkout, not whichever `noisetrain` the environment has installed: a
# second clone with its own version then reruns what its own code changes.
sys.path.insert(0, f"{workflow.basedir}/lib")

from noisetrain.config import ConfigError, check_config_files, check_device, validate_config
from noisetrain.errors import NoisetrainError

# A config file named on the command line is the whole config (schema defaults fill the rest);
# the embedded default is read only when none is named. Merging into config.yaml would silently
# add the digits study's methods to every other config.
if not workflow.overwrite_configfiles:

    configfile: f"{workflow.basedir}/config/config.yaml"


try:
    # Snakemake's YAML reader lets duplicate keys through (the last wins): read the files again.
    check_config_files([str(path) for path in workflow.configfiles])
    _resolved = validate_config(config)
except NoisetrainError as error:  # a config error, or a data folder it names that is laid out wrong
    sys.exit(str(error))
config.clear()
config.update(_resolved)


include: "rules/common.smk"


# Image-folder datasets (ImageNet) stream their images and evaluate through the prediction cache;
# the small datasets (digits, MNIST) hold theirs in arrays.
if IMAGE_FOLDERS:

    include: "rules/imagenet/common.smk"

    wildcard_constraints:
        dataset=re.escape(DATASET),
        corruption="|".join(re.escape(c) for c in IN_C_CORRUPTIONS),
        severity="[1-5]",

    include: "rules/imagenet/data.smk"
    include: "rules/imagenet/train.smk"
    include: "rules/imagenet/evaluate.smk"
    include: "rules/imagenet/report.smk"

else:

    wildcard_constraints:
        dataset=re.escape(DATASET),
        method="|".join(re.escape(m) for m in METHOD_NAMES),
        corruption="|".join(re.escape(c) for c in CORRUPTIONS),

    include: "rules/data.smk"
    include: "rules/train.smk"
    include: "rules/evaluate.smk"
    include: "rules/report.smk"


# Downloads need the internet, which cluster compute nodes often lack.
if config["dataset"].get("download"):

    localrules:
        prepare_dataset,


onstart:
    # device: cuda on a machine without a GPU fails here, before any job, for local runs (on a
    # cluster the jobs run elsewhere, and each job checks its own node).
    if workflow.local_exec and config["device"] == "cuda":
        import torch

        try:
            check_device(config, torch.cuda.is_available())
        except ConfigError as error:
            sys.exit(str(error))


rule all:
    default_target: True
    input:
        imagenet_targets() if IMAGE_FOLDERS else final_targets(),
