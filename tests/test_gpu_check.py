"""bench/gpu_check.sh / bench/gpu_check.py (issue 21): the one-command GPU check, run end to end in its
smallest setting on the CPU, and its runner's promises: a section that raises is recorded and the rest
still run, the budget skips what it cannot fit with a reason, and a section stopped at its hard limit
keeps what it measured."""

import importlib.util
import json
import math
import subprocess
import sys
import time
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
SECTIONS = ["card", "sample_folder", "train_synthetic", "ant_profile", "ant_phases", "loader", "train_streamed",
            "inference", "mnist", "ddp"]
METHODS = ["vanilla", "gnt", "ant1x1", "ant3x3"]
# Numbers that may be 0 in a correct run; every other number is a size, a time or a rate.
MAY_BE_ZERO = {"top1_agreement_with_fp32", "heldout_accuracy", "median_top1_margin",
               "self_device_ms", "self_cpu_ms"}  # the profile: no device on a CPU, kernels have no CPU time
# The ANT step less its parts timed apart: timing noise either way.
MAY_BE_NEGATIVE = {"rest_of_step_ms"}


def _module():
    spec = importlib.util.spec_from_file_location("gpu_check", REPO / "bench" / "gpu_check.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules["gpu_check"] = module  # its dataclasses look their module up there
    spec.loader.exec_module(module)
    return module


gpu_check = _module()


def numbers(obj, key=""):
    """(key, value) of every number in a nested result (booleans are flags, not numbers)."""
    if isinstance(obj, dict):
        for k, v in obj.items():
            yield from numbers(v, k)
    elif isinstance(obj, list):
        for v in obj:
            yield from numbers(v, key)
    elif isinstance(obj, (int, float)) and not isinstance(obj, bool):
        yield key, obj


@pytest.mark.slow
def test_smallest_run_end_to_end(tmp_path):
    result = subprocess.run(["bash", str(REPO / "bench" / "gpu_check.sh"), "--smallest", "--out", str(tmp_path),
                             "--budget-s", "100"], capture_output=True, text=True, timeout=170, cwd=REPO)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    report = json.loads((tmp_path / "gpu_check.json").read_text())
    assert report["device"] == "cpu" and report["setting"] == "smallest" and report["finished"]
    assert list(report["sections"]) == SECTIONS
    for name, entry in report["sections"].items():
        assert entry["status"] in ("ok", "failed", "timed_out", "skipped"), name
        if entry["status"] != "ok":
            assert entry["reason"], name
        for key, value in numbers(entry["results"]):
            assert math.isfinite(value), (name, key, value)
            assert key in MAY_BE_NEGATIVE or (value >= 0 if key in MAY_BE_ZERO else value > 0), (name, key, value)
    ran = {name: entry["results"] for name, entry in report["sections"].items() if entry["status"] == "ok"}
    assert ran.get("card", {}).get("device") == "cpu"  # never a GPU's name on a CPU
    for section, extra in (("train_synthetic", []), ("train_streamed", ["vanilla_gpu_decode"])):
        if section in ran:
            assert list(ran[section]["rows"]) == METHODS + extra
            assert all(row["images_per_s"] > 0 for row in ran[section]["rows"].values())
    if "ant_profile" in ran:  # the ANT step's operators, its own rescaling among them
        profile = ran["ant_profile"]
        assert profile["steps"] == 5 and len(profile["by_self_cpu"]) == 15 and profile["ops_per_step"] > 100
        assert any(row["op"].startswith("aten::") for row in profile["by_self_cpu"])
    if "ant_phases" in ran:  # the step, its three parts, and inside the generator update its own three
        phases = ran["ant_phases"]
        assert list(phases["rows"]) == ["ant_step", "classifier_step", "generator_update", "compose",
                                        "fixed_classifier_pass", "fixed_classifier_pass_train_bn",
                                        "generator_forward_backward", "rescale_forward_backward", "diagnostics"]
        ms = {name: row["ms_per_step"] for name, row in phases["rows"].items()}
        assert phases["parts_ms"] == pytest.approx(ms["generator_update"] + ms["compose"] + ms["classifier_step"])
        assert phases["rest_of_step_ms"] == pytest.approx(ms["ant_step"] - phases["parts_ms"])
        assert phases["rows"]["classifier_step"]["ratio_to_vanilla"] == 1.0
    if "inference" in ran:
        rows = ran["inference"]["rows"]
        assert list(rows) == ["fp32", "bf16", "fp16"]
        assert all("images_per_s" in row or row["error"] for row in rows.values())
    if "mnist" in ran:
        assert set(ran["mnist"]["rows"]) == {"host_arrays", "device_arrays"}
        methods = ran["mnist"]["methods"]
        assert list(methods["rows"]) == ["vanilla", "gnt_s0.5", "ant1x1", "pgd_at", "ddn_at"]
        # the smallest setting times batch 10, not the config's 300: no paper-budget projection from it
        assert methods["batch_size"] == 10 and not any("projected_h" in row for row in methods["rows"].values())
        assert methods["rows"]["pgd_at"]["ratio_to_vanilla"] > 5  # 40 input-gradient passes a step
        ops = {name: row["ops_per_step"] for name, row in methods["rows"].items()}
        assert 30 < ops["vanilla"] < ops["gnt_s0.5"] < ops["ant1x1"] and ops["pgd_at"] > 40 * 10, ops  # PGD: 40 passes
        assert set(ran["mnist"]["limit"]["rows"]) == {"vanilla", "gnt_s0.5"}
    if "ddp" in ran:
        assert ran["ddp"]["processes"] == 1 and ran["ddp"]["ddp_wrapper"] == "DistributedDataParallel"
    text = (tmp_path / "gpu_check.txt").read_text()
    assert "device cpu" in text and "card: none" in text
    assert (tmp_path / "gpu_check.log").exists()


def args_for(out: Path, budget: float):
    return gpu_check.get_parser().parse_args(["--smallest", "--out", str(out), "--budget-s", str(budget)])


def measures(ctx, out):
    out["images_per_s"] = 1.0


def test_a_section_that_raises_is_recorded_and_the_rest_run(tmp_path):
    def boom(ctx, out):
        out["measured_before"] = 2.0
        raise ValueError("the card caught fire")

    sections = [("first", measures, 1.0), ("boom", boom, 1.0), ("last", measures, 1.0)]
    report = gpu_check.run_check(args_for(tmp_path, 30), sections)
    entries = report["sections"]
    assert [entries[name]["status"] for name in ("first", "boom", "last")] == ["ok", "failed", "ok"]
    assert entries["boom"]["reason"] == "ValueError: the card caught fire"
    assert "the card caught fire" in entries["boom"]["traceback"]
    assert entries["boom"]["results"] == {"measured_before": 2.0}  # what it measured before failing is kept
    on_disk = json.loads((tmp_path / "gpu_check.json").read_text())
    assert on_disk["sections"]["boom"]["status"] == "failed" and on_disk["finished"]
    assert "boom: FAILED - ValueError: the card caught fire" in (tmp_path / "gpu_check.txt").read_text()


def test_the_budget_skips_the_remaining_sections_with_a_reason(tmp_path):
    def slow(ctx, out):  # overruns its share (the hard stop is far), leaving too little for the rest
        time.sleep(1.8)
        out["seconds"] = 1.8

    sections = [("slow", slow, 1.0), ("late", measures, 1.0), ("later", measures, 1.0)]
    report = gpu_check.run_check(args_for(tmp_path, 4.0), sections, grace=lambda soft: 10.0)
    entries = report["sections"]
    assert entries["slow"]["status"] == "ok"
    for name in ("late", "later"):
        assert entries[name]["status"] == "skipped" and entries[name]["reason"].startswith("budget:")
        assert entries[name]["results"] == {}
    assert "late: SKIPPED - budget:" in (tmp_path / "gpu_check.txt").read_text()


def test_a_section_stopped_at_its_hard_limit_keeps_what_it_measured(tmp_path):
    def hangs(ctx, out):
        out["images_per_s"] = 5.0
        time.sleep(60)

    started = time.monotonic()
    report = gpu_check.run_check(args_for(tmp_path, 4.0), [("hangs", hangs, 1.0)], grace=lambda soft: 0.5)
    assert time.monotonic() - started < 10
    entry = report["sections"]["hangs"]
    assert entry["status"] == "timed_out" and "hard limit" in entry["reason"]
    assert entry["results"] == {"images_per_s": 5.0}
