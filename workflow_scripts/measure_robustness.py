#!/usr/bin/env python
"""Noise and adversarial robustness of one model: median epsilon* along Gaussian, uniform and
adversarial noise (mean and std over several fresh generators), and accuracy under L-infinity
PGD and L2 DDN. Writes one tidy JSON record per metric, the fitted adversarial-noise generators
(for example figures) and the per-image epsilon* (for the claims table's intervals). The model is
a noisetrain model file (the small datasets) or an ImageNet evaluation model's spec; it runs on
the CPU or a CUDA GPU (--device)."""

import argparse

import _libpath  # noqa: F401  (this checkout's lib/ first on sys.path)
import numpy as np
import torch

from noisetrain.cli import json_arg, run, say, set_threads
from noisetrain.data import datasets
from noisetrain.data.stratified import measured_subset
from noisetrain.measure import robustness
from noisetrain.models.devices import describe_device, resolve_device
from noisetrain.models.model_file import load_model
from noisetrain.noise.generator_bank import GeneratorBank, write_bank
from noisetrain.report import records
from noisetrain.report.sweep_choice import resolve_an_eps
from noisetrain.storage import atomic_write


def get_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__)
    model = parser.add_mutually_exclusive_group(required=True)
    model.add_argument("--model", help="model file (.pt) of the small datasets")
    model.add_argument(
        "--model-spec",
        type=json_arg,
        help="JSON {architecture, weights}: an ImageNet evaluation model (torchvision architecture; weights "
        "a torchvision name, a checkpoint file or 'random'); --data must be the robustness set",
    )
    parser.add_argument("--data", required=True, help="prepared clean dataset, or ImageNet's robustness set (.npz)")
    parser.add_argument("--method", required=True, help="method name recorded with the results")
    parser.add_argument(
        "--robustness",
        type=json_arg,
        required=True,
        help="the config's robustness section as JSON (images, rel_tol, an_seeds, an_steps, an_lr, an_batch_size, an_eps)",
    )
    parser.add_argument(
        "--attacks",
        type=json_arg,
        required=True,
        help="the config's attacks section as JSON (images, linf_pgd {...}, l2_ddn {...})",
    )
    parser.add_argument(
        "--eps-choice",
        default=None,
        help="for an_eps 'auto' or 'search': the choice record (.json) of choose_sweep or choose_eps",
    )
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument(
        "--device",
        default="cpu",
        choices=["auto", "cpu", "cuda"],
        help="where the model runs: cpu, cuda, or auto (the GPU when the job sees one)",
    )
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--noise-out", required=True, help="record of median epsilon* (.json)")
    parser.add_argument("--adversarial-out", required=True, help="record of adversarial accuracies (.json)")
    parser.add_argument("--generators-out", required=True, help="fitted adversarial-noise generators (.pt)")
    parser.add_argument("--distances-out", required=True, help="per-image epsilon* behind each median (.npz)")
    return parser


def main(args) -> None:
    set_threads(args.threads)
    device = resolve_device(args.device)
    data = datasets.load(args.data)
    if args.model_spec is not None:  # imported here: the ImageNet modules import torchvision (seconds a job)
        from noisetrain.measure.imagenet_robustness import robustness_model

        model, info, data = robustness_model(args.model_spec, data, args.data, args.seed)
    else:
        model, info = load_model(args.model)
    model.to(device)
    say(
        f"{args.method} on {describe_device(device)}: {len(data.test.labels)} test and {len(data.train.labels)} training images "
        f"of shape {tuple(data.test.images.shape[1:])}"
    )
    cfg = args.robustness
    an_eps = resolve_an_eps(cfg["an_eps"], args.eps_choice)
    test_x, test_y = datasets.to_float(data.test.images), torch.from_numpy(data.test.labels)
    train_x, train_y = datasets.to_float(data.train.images), torch.from_numpy(data.train.labels)
    keep = measured_subset(data.test.labels, cfg["images"], args.seed, data.name)
    rows, generators, distances = robustness.noise_robustness(
        model,
        test_x[keep],
        test_y[keep],
        train_x,
        train_y,
        seed=args.seed,
        rel_tol=cfg["rel_tol"],
        an_seeds=cfg["an_seeds"],
        an_steps=cfg["an_steps"],
        an_lr=cfg["an_lr"],
        an_eps=an_eps,
        an_batch_size=cfg["an_batch_size"],
        log=say,
    )
    where = {"device": describe_device(device)}  # part of the provenance: the card, or the CPU
    settings = {"robustness": {**cfg, "an_eps": an_eps}, "seed": args.seed, **where}
    records.write_record(records.make_record(data.name, args.method, "noise_robustness", rows, info, settings), args.noise_out)
    write_bank(GeneratorBank.of(generators, an_eps), args.generators_out)
    atomic_write(args.distances_out, lambda tmp: np.savez_compressed(tmp, **distances), suffix=".npz")

    keep = measured_subset(data.test.labels, args.attacks["images"], args.seed, data.name)
    attacks = {name: args.attacks[name] for name in ("linf_pgd", "l2_ddn")}
    rows = robustness.adversarial_rows(model, test_x[keep], test_y[keep], attacks, args.seed)
    settings = {"attacks": args.attacks, "seed": args.seed, **where}
    records.write_record(records.make_record(data.name, args.method, "adversarial", rows, info, settings), args.adversarial_out)
    say(f"{args.method}: " + ", ".join(f"{r['corruption']} {r['value']:.4f}" for r in rows))


if __name__ == "__main__":
    run(main, get_parser())
