#!/usr/bin/env python
"""Train one model: vanilla or an adversarial-training baseline from scratch, or a noise method
fine-tuned from the vanilla model.

Resumes from --checkpoint-dir/last.pt when a checkpoint of the same run (spec, data, initial
model, code version) is there; removes the checkpoint once the final model is saved."""

import argparse

import _libpath  # noqa: F401  (this checkout's lib/ first on sys.path)

from noisetrain.cli import json_arg, run, say, set_threads
from noisetrain.data import datasets
from noisetrain.models.devices import describe_device, resolve_device
from noisetrain.models.model_file import load_model
from noisetrain.report.sweep_choice import resolve_eps
from noisetrain.train import trainer


def get_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--data", required=True, help="prepared clean dataset (.npz)")
    parser.add_argument("--spec", type=json_arg, required=True,
                        help="training spec as JSON (noisetrain.config.train_spec): method, kind, noise "
                             "levels, epochs, lr, momentum, weight_decay, lr_decay_epoch, batch_size, "
                             "clean_fraction, model, seed")
    parser.add_argument("--init", default=None, help="model file to fine-tune from (the vanilla model)")
    parser.add_argument("--eps-choice", default=None,
                        help="ANT with eps 'auto' or 'search': the choice record (.json) of choose_sweep or choose_eps")
    parser.add_argument("--checkpoint-dir", required=True, help="where checkpoints live (kept on failure)")
    parser.add_argument("--checkpoint-minutes", type=float, default=10.0,
                        help="also checkpoint after this many minutes of work within an epoch")
    parser.add_argument("--device", default="auto", choices=["auto", "cpu", "cuda"])
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--out", required=True, help="final model file (.pt)")
    parser.add_argument("--log-csv", required=True,
                        help="training log: epoch, loss, held-out accuracy, seconds, images/s, method metrics")
    parser.add_argument("--steps-csv", required=True, help="per-step log: loss, accuracy, method metrics, images/s")
    return parser


def main(args) -> None:
    set_threads(args.threads)
    spec = resolve_eps(args.spec, args.eps_choice)
    data = datasets.load(args.data)
    init = load_model(args.init)[0].state_dict() if args.init else None
    device = resolve_device(args.device)
    say(f"{spec['method']}: training on {describe_device(device)}")
    state = trainer.fit(spec, data, checkpoint_dir=args.checkpoint_dir, init_state=init, device=device,
                        divergence_guard=spec["divergence_guard"], checkpoint_every=60 * args.checkpoint_minutes, log=say)
    info = {**trainer.run_identity(spec, data, init), "dataset": data.name, "device": describe_device(state.precision.device)}
    trainer.finish(state, args.checkpoint_dir, info, args.out, args.log_csv, args.steps_csv, arch=spec["model"],
                   in_channels=data.channels, num_classes=data.num_classes)
    say(f"saved {args.out}")


if __name__ == "__main__":
    run(main, get_parser())
