#!/usr/bin/env python
"""Fine-tune one ImageNet model (appendix B.1) on a training folder, streamed: the method's step on
augmented crops, checked each epoch on the listed val images.

Resumes from --checkpoint-dir/last.pt when a checkpoint of the same run is there (and after
SIGTERM / SIGUSR1, which make it checkpoint and stop); removes it once the model is saved.

On several GPUs, data-parallel, one process per GPU, --spec's batch_size shared among them:
torchrun --standalone --nproc_per_node N train_images.py ... (or srun with N tasks)."""

import argparse
import os

import _libpath  # noqa: F401  (this checkout's lib/ first on sys.path)

from noisetrain.cli import json_arg, run, say, set_threads
from noisetrain.train.folder_training import train_on_folder


def get_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--train-dir", required=True, help="training ImageFolder (<wnid>/<image>.JPEG)")
    parser.add_argument("--val-dir", required=True, help="val ImageFolder")
    parser.add_argument("--val-files", required=True, help="val list (.json) written by list_val_images")
    parser.add_argument("--heldout-images", type=int, default=None,
                        help="check each epoch on this many of the listed val images (stratified); all by default")
    parser.add_argument("--spec", type=json_arg, required=True, help="training spec as JSON (noisetrain.config.train_spec)")
    parser.add_argument("--weights", required=True,
                        help="initial weights: a torchvision weights name, a checkpoint file, or 'random' (smoke runs)")
    parser.add_argument("--checkpoint-dir", required=True, help="where checkpoints live (kept on failure)")
    parser.add_argument("--checkpoint-minutes", type=float, default=10.0,
                        help="also checkpoint after this many minutes of work within an epoch")
    parser.add_argument("--workers", type=int, default=4, help="DataLoader processes decoding images")
    parser.add_argument("--decode", default="cpu", choices=["cpu", "gpu"],
                        help="cpu: the workers decode with PIL; gpu: this process decodes batches on its device")
    parser.add_argument("--device", default="auto", choices=["auto", "cpu", "cuda"])
    parser.add_argument("--amp", action=argparse.BooleanOptionalAction, default=True,
                        help="autocast on CUDA (bf16 where supported, else fp16 with loss scaling)")
    parser.add_argument("--threads", type=int, default=1, help="CPU threads of the job, shared by its processes")
    parser.add_argument("--out", required=True, help="final model file (.pt)")
    parser.add_argument("--log-csv", required=True, help="per-epoch log")
    parser.add_argument("--steps-csv", required=True, help="per-step log")
    return parser


def main(args) -> None:
    set_threads(args.threads // int(os.environ.get("LOCAL_WORLD_SIZE", 1)))  # torchrun's processes on this node
    train_on_folder(args.spec, train_dir=args.train_dir, val_dir=args.val_dir, val_files=args.val_files,
                    weights=args.weights, checkpoint_dir=args.checkpoint_dir, out=args.out, log_csv=args.log_csv,
                    steps_csv=args.steps_csv, heldout_images=args.heldout_images, workers=args.workers,
                    decode=args.decode, device=args.device, amp=args.amp, checkpoint_every=60 * args.checkpoint_minutes, log=say)


if __name__ == "__main__":
    run(main, get_parser())
