"""noisetrain: the shared library of the noise-training reproduction pipeline.

Reproduces Rusak et al., "A simple way to make neural networks robust against diverse image
corruptions" (ECCV 2020). Every piece of real logic lives in this package; Snakemake rules and
the CLIs in ``workflow_scripts/`` only wire it together.
"""

# Bump when a change in this package changes what training or evaluation computes, or the format
# of a file it writes (model files, records, generator banks): the rules
# pass it through ``params:`` so Snakemake reruns the affected jobs.
__version__ = "0.6.0"
