"""A job pays for what it imports: torch costs about 2 s, torchvision another 2 s, foolbox 1 s,
pandas and scipy 0.3 s each a job, which add up over the embedded study's 70-odd jobs (issue 9: it
must run within minutes)."""

import subprocess
import sys

import pytest
from conftest import REPO


def imported_heavy(statement: str, heavy=("torch", "torchvision", "foolbox")) -> set[str]:
    code = f"import sys; sys.path[:0] = ['{REPO}/workflow_scripts']; {statement}; " \
           f"print(' '.join(sorted(set({list(heavy)}) & set(sys.modules))))"
    out = subprocess.run([sys.executable, "-c", code], check=True, capture_output=True, text=True, cwd=REPO)
    return set(out.stdout.split())


def test_corruption_choice_and_report_jobs_import_no_torch():
    scripts = ["corrupt_testset", "choose_sweep", "choose_eps", "make_tables", "make_claims", "plot_sigma_sweep",
               "plot_corruptions", "collect_benchmarks"]
    assert imported_heavy("; ".join(f"import {name}" for name in scripts)) == set()


@pytest.mark.slow
def test_small_data_jobs_import_no_torchvision_and_still_record_its_version():
    statement = ("import score_model, train; from noisetrain.measure import evaluation; "
                 "from noisetrain.report.records import provenance; "
                 "assert provenance({})['versions']['torchvision'][0].isdigit()")
    assert imported_heavy(statement) == {"torch"}  # foolbox only where an attack runs
    assert imported_heavy("import measure_robustness") == {"torch", "foolbox"}


@pytest.mark.slow
def test_evaluation_jobs_import_no_pandas_or_scipy():
    # pandas serves the table jobs, scipy the corruptions' generation: neither an evaluation.
    statement = "import predict_model, score_model; from noisetrain.measure import evaluation"
    assert imported_heavy(statement, heavy=("pandas", "scipy")) == set()
