"""bench/imagenet_train_step.py in its smallest settings: both modes' code paths run on the CPU and
print their tables; bench/ant_checkpoint.py projects the paper config's ANT checkpoint."""

import re
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow  # the benchmarks themselves, two of them in a subprocess

REPO = Path(__file__).resolve().parents[1]
SCRIPT = REPO / "bench" / "imagenet_train_step.py"
# The smallest settings: one timed step per row and no warm-up, a batch of 2, one loader worker.
TINY = ["--model", "mobilenet_v3_small", "--batch-size", "2", "--steps", "1", "--rounds", "1", "--warmup", "0",
        "--workers", "1", "--reinit-steps", "1", "--threads", "1"]
ROW = re.compile(r"^(?P<name>\S.*?)\s+(?P<precision>\S+)\s+(?P<images>[\d.]+)\s+(?P<ms>[\d.]+)\s+(?P<spread>\d+)"
                 r"\s+(?P<ratio>[\d.]+)\s*(?P<target>.*)$")


def run(*args: str) -> str:
    result = subprocess.run([sys.executable, str(SCRIPT), *TINY, *args], capture_output=True, text=True, timeout=120,
                            cwd=REPO)
    assert result.returncode == 0, result.stderr[-3000:]
    return result.stdout


def rows(text: str) -> dict[str, dict[str, str]]:
    found = {}
    for line in text.splitlines():
        match = ROW.match(line)
        if match and match["name"] != "row":
            found[match["name"]] = match.groupdict()
    return found


def check_rows(table: dict, names: list[str]) -> None:
    assert set(names) <= set(table), (names, list(table))
    for name in names:
        assert float(table[name]["ratio"]) > 0 and float(table[name]["images"]) > 0 and float(table[name]["ms"]) > 0


def test_stream_mode_prints_every_row_with_ratios_and_targets():
    out = run()
    table = rows(out)
    check_rows(table, ["loader only", "vanilla in memory", "gnt draw only", "vanilla", "gnt", "ant1x1", "ant3x3",
                       "ant floor"])
    assert float(table["vanilla"]["ratio"]) == 1.0
    assert re.fullmatch(r"<= 1\.05 (ok|MISSED)", table["gnt"]["target"])
    assert re.fullmatch(r"<= 1\.9 (ok|MISSED)", table["ant1x1"]["target"])
    assert table["vanilla"]["precision"] == "fp32" and table["loader only"]["precision"] == "-"
    assert table["gnt draw only"]["target"] == ""  # a reference row, not a method
    assert re.search(r"ANT re-initialisation: [\d.]+ s for 1 generator steps, so [\d.]+ s per fresh generator "
                     r"\(1001 steps\); one every \d+ steps", out)


def test_throughput_mode_runs_the_gpu_code_path_on_the_cpu():
    out = run("--mode", "throughput", "--device", "cpu", "--stream-steps", "1")
    assert out.startswith("CPU: mobilenet_v3_small, random init, 1000 classes, batch 2 at 224x224")
    table = rows(out)
    names = [f"{method} {tag}" for tag in ("amp", "fp32") for method in ("vanilla", "gnt", "ant1x1", "ant3x3", "ant floor")]
    check_rows(table, [*names, "loader only", "vanilla amp synthetic", "vanilla amp streamed"])
    for tag in ("amp", "fp32"):
        assert float(table[f"vanilla {tag}"]["ratio"]) == 1.0
        assert table[f"ant1x1 {tag}"]["target"].startswith("<= 1.9")
        assert table[f"ant3x3 {tag}"]["target"] == ""  # timed, without a target of its own
    assert table["vanilla amp"]["precision"] == "fp32"  # AMP is a CUDA thing: fp32 on the CPU


def test_checkpoint_bench_projects_the_paper_configs_ant_checkpoint(tmp_path, monkeypatch):
    monkeypatch.syspath_prepend(str(REPO / "bench"))
    import ant_checkpoint as bench

    config, methods = bench.ant_methods(REPO / "config" / "imagenet.yaml")
    row = bench.projection(config, "ant3x3", methods["ant3x3"])
    # 1,281,167 // 70 = 18,302 steps an epoch, 80 epochs, a snapshot every 20 steps, 1000 kept.
    assert (row["steps"] * row["epochs"], row["offered"], row["kept"]) == (1_464_160, 73_208, 1000)
    resnet50 = 25_557_032 * 4 * 2  # weights + SGD momentum (plus BatchNorm's running statistics)
    assert resnet50 < row["bounded"] < resnet50 + 30e6  # the model plus a few tens of MB
    assert row["unbounded"] - row["bounded"] == 72_208 * bench.nbytes(row["generator"])
    bounded, unbounded = bench.write_seconds(row, tmp_path)
    assert 0 < bounded < unbounded and not list(tmp_path.iterdir())  # written, timed, removed
    no_replay = {**methods["ant3x3"], "replay": False}
    assert bench.projection(config, "noep", no_replay)["kept"] == 0
