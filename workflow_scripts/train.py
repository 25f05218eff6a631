#!/usr/bin/env python
"""Train one model: vanilla from scratch, or a noise method fine-tuned from the vanilla model.

Resumes from --checkpoint-dir/last.pt when a checkpoint of the same spec is there."""

import _libpath  # noqa: F401  (this checkout's lib/ first on sys.path)

import argparse
import csv
from pathlib import Path

from noisetrain import datasets, models, training
from noisetrain.cli import json_arg, run, say, set_threads


def get_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--data", required=True, help="prepared clean dataset (.npz)")
    parser.add_argument("--spec", type=json_arg, required=True,
                        help="training spec as JSON (noisetrain.config.train_spec): method, kind, noise "
                             "levels, epochs, lr, momentum, weight_decay, lr_decay_epoch, batch_size, "
                             "clean_fraction, model, seed")
    parser.add_argument("--init", default=None, help="model file to fine-tune from (the vanilla model)")
    parser.add_argument("--eps-file", default=None, help="ANT with eps 'auto': the .json written by choose_ant_eps.py")
    parser.add_argument("--checkpoint-dir", required=True, help="where per-epoch checkpoints live (kept on failure)")
    parser.add_argument("--device", default="auto", choices=["auto", "cpu", "cuda"])
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--out", required=True, help="final model file (.pt)")
    parser.add_argument("--log-csv", required=True, help="training log: epoch, loss, held-out accuracy, seconds, images/s")
    return parser


def main(args) -> None:
    set_threads(args.threads)
    spec = training.resolve_eps(args.spec, args.eps_file)
    data = datasets.load(args.data)
    init = models.load_model(args.init)[0].state_dict() if args.init else None
    state = training.fit(spec, data, checkpoint_dir=args.checkpoint_dir, init_state=init, device=args.device, log=say)
    with open(args.log_csv, "w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=training.LOG_COLUMNS)
        writer.writeheader()
        writer.writerows(state.log)
    extras = state.method.export() if hasattr(state.method, "export") else {}
    models.save_model(state.model.cpu(), args.out, arch=spec["model"], in_channels=data.channels,
                      num_classes=data.num_classes, info={"spec": spec, "dataset": data.name}, extras=extras)
    say(f"saved {args.out}; checkpoints stay in {Path(args.checkpoint_dir)}")


if __name__ == "__main__":
    run(main, get_parser())
