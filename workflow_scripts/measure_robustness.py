#!/usr/bin/env python
"""Noise and adversarial robustness of one model: median epsilon* along Gaussian, uniform and
adversarial noise (mean and std over several fresh generators), and accuracy under L-infinity
PGD and L2 DDN. Writes one tidy JSON record per metric, and the fitted adversarial-noise
generators (for example figures)."""

import _libpath  # noqa: F401  (this checkout's lib/ first on sys.path)

import argparse
from pathlib import Path

import torch

from noisetrain import datasets, models, results, robustness, training
from noisetrain.cli import json_arg, run, say, set_threads


def get_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--model", required=True,
                        help="model file (.pt); with --best-of, the folder of the sweep's model files")
    parser.add_argument("--best-of", default=None,
                        help="ant_eps.json of choose_ant_eps.py: measure the sweep's best GNT model named there")
    parser.add_argument("--data", required=True, help="prepared clean dataset (.npz)")
    parser.add_argument("--method", required=True, help="method name recorded with the results")
    parser.add_argument("--robustness", type=json_arg, required=True,
                        help="the config's robustness section as JSON (images, rel_tol, an_seeds, an_steps, an_lr, an_batch_size, an_eps)")
    parser.add_argument("--attacks", type=json_arg, required=True,
                        help="the config's attacks section as JSON (images, linf_pgd {...}, l2_ddn {...})")
    parser.add_argument("--eps-file", default=None, help="for an_eps 'auto': the .json written by choose_ant_eps.py")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--noise-out", required=True, help="record of median epsilon* (.json)")
    parser.add_argument("--adversarial-out", required=True, help="record of adversarial accuracies (.json)")
    parser.add_argument("--generators-out", required=True, help="fitted adversarial-noise generators (.pt)")
    return parser


def main(args) -> None:
    set_threads(args.threads)
    if args.best_of:  # the best sigma is known only after the sweep: resolve it here, not in the DAG
        args.method = training.read_sweep_choice(args.best_of, "--best-of")["best_method"]
        args.model = str(Path(args.model) / f"{args.method}.pt")
    model, info = models.load_model(args.model)
    spec = info.get("spec", {})
    data = datasets.load(args.data)
    cfg = args.robustness
    an_eps = cfg["an_eps"]
    if an_eps == "auto":
        an_eps = training.read_sweep_choice(args.eps_file, "robustness.an_eps")["eps"]
    test_x, test_y = datasets.to_float(data.test.images), torch.from_numpy(data.test.labels)
    train_x, train_y = datasets.to_float(data.train.images), torch.from_numpy(data.train.labels)
    keep = datasets.stratified_subset(data.test.labels, cfg["images"], args.seed)
    rows, generators = robustness.noise_robustness(
        model, test_x[keep], test_y[keep], train_x, train_y, seed=args.seed, rel_tol=cfg["rel_tol"],
        an_seeds=cfg["an_seeds"], an_steps=cfg["an_steps"], an_lr=cfg["an_lr"], an_eps=an_eps,
        an_batch_size=cfg["an_batch_size"], log=say,
    )
    results.write_record(results.make_record(data.name, args.method, "noise_robustness", rows, spec), args.noise_out)
    arch = generators[0]  # all fitted alike; recorded so the file rebuilds without guessing
    models.atomic_save({"eps": an_eps, "generators": [g.state_dict() for g in generators],
                        "config": {"channels": arch.channels, "depth": arch.depth, "kernel": arch.kernel}},
                       args.generators_out)

    keep = datasets.stratified_subset(data.test.labels, args.attacks["images"], args.seed)
    settings = {name: args.attacks[name] for name in ("linf_pgd", "l2_ddn")}
    rows = robustness.adversarial_rows(model, test_x[keep], test_y[keep], settings, args.seed)
    results.write_record(results.make_record(data.name, args.method, "adversarial", rows, spec), args.adversarial_out)
    say(f"{args.method}: " + ", ".join(f"{r['corruption']} {r['value']:.4f}" for r in rows))


if __name__ == "__main__":
    run(main, get_parser())
