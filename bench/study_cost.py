#!/usr/bin/env python
"""The whole paper study's GPU cost (issue 21): GPU-hours per model and in all, and the wall time on
one GPU node with the slurm profile's packing, from the rates a GPU run of bench/gpu_check.sh measured.

    python bench/study_cost.py --gpu-check DIR/gpu_check.json [--config config/imagenet.yaml]
                               [--profile profiles/slurm/config.yaml] [--node-gpus 8] [--out study_cost.md]

Prints a markdown table and writes it to --out (default: study_cost.md beside the gpu_check.json). The
config is read as the workflow reads it (noisetrain.config, noisetrain.study) without looking for its
data on disk. The arithmetic and its assumptions: lib/noisetrain/study_cost.py.
"""

import argparse
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "lib"))

from noisetrain.config import load_config  # noqa: E402
from noisetrain.config_data import files_unchecked  # noqa: E402
from noisetrain.errors import NoisetrainError  # noqa: E402
from noisetrain.study import Study  # noqa: E402
from noisetrain.study_cost import markdown, project, read_measured, read_packing  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--gpu-check", required=True, type=Path, help="gpu_check.json of bench/gpu_check.sh on a GPU")
    parser.add_argument("--config", default=ROOT / "config" / "imagenet.yaml", type=Path)
    parser.add_argument("--profile", default=ROOT / "profiles" / "slurm" / "config.yaml", type=Path)
    parser.add_argument("--node-gpus", default=8, type=int, help="GPUs of the one node the wall time packs jobs on")
    parser.add_argument("--out", type=Path, help="markdown file (default: study_cost.md beside --gpu-check)")
    args = parser.parse_args()
    try:
        with files_unchecked():
            study = Study(load_config(args.config))
        text = markdown(project(study, read_measured(args.gpu_check), read_packing(args.profile, args.node_gpus)))
    except (NoisetrainError, OSError) as exc:
        sys.exit(f"study_cost: {exc}")
    out = args.out or args.gpu_check.with_name("study_cost.md")
    out.write_text(text)
    print(text + f"\nwritten to {out}")


if __name__ == "__main__":
    main()
