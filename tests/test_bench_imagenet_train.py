"""bench/imagenet_train_step.py in its smallest settings: both modes' code paths run on the CPU and
print their tables; and the bench's ANT spec is the schema's defaults (so it times what a run trains)."""

import ast
import re
import subprocess
import sys
from pathlib import Path

import yaml

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
    check_rows(table, ["loader only", "vanilla in memory", "gnt draw only", "vanilla", "gnt", "ant1x1", "ant floor"])
    assert float(table["vanilla"]["ratio"]) == 1.0
    assert re.fullmatch(r"<= 1\.05 (ok|MISSED)", table["gnt"]["target"])
    assert re.fullmatch(r"<= 2\.1 (ok|MISSED)", table["ant1x1"]["target"])
    assert table["vanilla"]["precision"] == "fp32" and table["loader only"]["precision"] == "-"
    assert table["gnt draw only"]["target"] == ""  # a reference row, not a method
    assert re.search(r"ANT re-initialisation: [\d.]+ s for 1 generator steps, so [\d.]+ s per fresh generator "
                     r"\(200 steps\); one every \d+ steps", out)


def test_throughput_mode_runs_the_gpu_code_path_on_the_cpu():
    out = run("--mode", "throughput", "--device", "cpu", "--stream-steps", "1")
    assert out.startswith("CPU: mobilenet_v3_small, random init, 1000 classes, batch 2 at 224x224")
    table = rows(out)
    names = [f"{method} {tag}" for tag in ("amp", "fp32") for method in ("vanilla", "gnt", "ant1x1", "ant floor")]
    check_rows(table, [*names, "loader only", "vanilla amp synthetic", "vanilla amp streamed"])
    for tag in ("amp", "fp32"):
        assert float(table[f"vanilla {tag}"]["ratio"]) == 1.0
        assert table[f"ant1x1 {tag}"]["target"].startswith("<= 2.1")
    assert table["vanilla amp"]["precision"] == "fp32"  # AMP is a CUDA thing: fp32 on the CPU


def bench_constant(name: str):
    """A literal module-level constant of the bench script, read without running it."""
    for node in ast.parse(SCRIPT.read_text()).body:
        if isinstance(node, ast.Assign) and [getattr(t, "id", None) for t in node.targets] == [name]:
            return ast.literal_eval(node.value)
    raise AssertionError(f"{SCRIPT.name} has no constant {name}")


def _ant_defaults(node) -> dict | None:
    """The defaults of the schema's ANT method branch (the 'then' of `if kind == ant`)."""
    if isinstance(node, dict):
        if node.get("if", {}).get("properties", {}).get("kind", {}).get("const") == "ant":
            return {key: value["default"] for key, value in node["then"]["properties"].items() if "default" in value}
        for value in node.values():
            if (found := _ant_defaults(value)) is not None:
                return found
    if isinstance(node, list):
        for value in node:
            if (found := _ant_defaults(value)) is not None:
                return found
    return None


def test_the_benched_ant_spec_is_the_schema_default_with_imagenet_eps():
    defaults = _ant_defaults(yaml.safe_load((REPO / "config" / "schema.yaml").read_text()))
    assert defaults is not None
    ant = bench_constant("ANT_1X1")
    assert {key: value for key, value in ant.items() if key not in ("kind", "eps")} == \
        {key: defaults[key] for key in ant if key not in ("kind", "eps")}
    assert ant["eps"] == 135.0 and ant["kernel"] == "1x1"  # appendix B.1's ImageNet ANT 1x1
