"""The deliverable: the compute-cost table (lib/noisetrain/report/benchmarks.py), the Snakemake
HTML report of the tiny end-to-end study (front page, tables, figures, compute cost), and the
LaTeX tables (ASCII only; they compile with pdflatex where it is installed)."""

import base64
import json
import re
import shutil
import subprocess

import pytest
from conftest import METHODS, snakemake

from noisetrain.errors import DataError
from noisetrain.report import benchmarks
from noisetrain.report.outputs import TABLE_NAMES

ALL_TABLES = (*TABLE_NAMES, "claims")  # the claims table has a rule of its own

HEADER = "s\th:m:s\tmax_rss\tmax_vms\tmax_uss\tmax_pss\tio_in\tio_out\tmean_load\tcpu_time\n"


def write_tsv(path, *runs):
    """A Snakemake benchmark file: one row (s, max_rss, cpu_time) per run; None is Snakemake's NA."""
    path.parent.mkdir(parents=True, exist_ok=True)
    lines = []
    for wall, rss, cpu in runs:
        na = lambda v: "NA" if v is None else f"{v:.2f}"  # noqa: E731
        lines.append(f"{wall:.4f}\t0:00:{int(wall):02d}\t{na(rss)}\t{na(rss)}\t{na(rss)}\t{na(rss)}\t"
                     f"{na(0.0)}\t{na(0.0)}\t{na(50.0)}\t{na(cpu)}\n")
    path.write_text(HEADER + "".join(lines))


@pytest.fixture
def bench_dir(tmp_path):
    root = tmp_path / "benchmarks"
    write_tsv(root / "prepare_dataset.tsv", (2.0, 100.0, 1.5))
    write_tsv(root / "train" / "vanilla.tsv", (10.0, 300.0, 18.0))
    write_tsv(root / "train" / "gnt_s0.5.tsv", (4.0, 200.0, 8.0), (6.0, 220.0, 10.0))  # repeat(): two runs
    write_tsv(root / "tables.tsv", (0.5, None, None))  # ended before Snakemake's first measurement
    return root


def test_cost_table_orders_jobs_and_totals_them(bench_dir):
    table = benchmarks.cost_table(benchmarks.collect(bench_dir))
    wall, rss, cpu = benchmarks.COLUMNS.values()
    # Rules by total wall time (train 15 s, prepare_dataset 2 s, tables 0.5 s); jobs by wall time.
    assert list(zip(table["rule"], table["job"])) == [
        ("train", "vanilla"), ("train", "gnt_s0.5"), ("prepare_dataset", ""), ("tables", ""), ("total", "4 jobs")]
    gnt = table.iloc[1]
    assert (gnt[wall], gnt[rss], gnt[cpu]) == pytest.approx((5.0, 210.0, 9.0))  # the mean of the two runs
    assert table.iloc[3][rss] != table.iloc[3][rss]  # NA stays missing (NaN), not zero
    total = table.iloc[-1]
    assert total[wall] == pytest.approx(10.0 + 5.0 + 2.0 + 0.5)
    assert total[rss] == pytest.approx(300.0)  # the largest of any job, not a sum
    assert total[cpu] == pytest.approx(18.0 + 9.0 + 1.5)  # the NA job adds nothing


def test_written_table_names_the_commit(bench_dir, tmp_path):
    table = benchmarks.cost_table(benchmarks.collect(bench_dir))
    md, html = tmp_path / "out" / "benchmarks.md", tmp_path / "out" / "benchmarks.html"
    benchmarks.write(table, "digits", md, html, commit="0123abcd+dirty")
    text = md.read_text()
    assert text.splitlines()[0].startswith("Produced by git commit 0123abcd+dirty (noisetrain ")
    assert "for dataset digits" in text.splitlines()[0]
    total_row = next(line for line in text.splitlines() if line.startswith("| total"))
    assert re.findall(r"\d+\.\d", total_row) == ["17.5", "300.0", "28.5"]
    tables_row = next(line for line in text.splitlines() if line.startswith("| tables"))
    assert tables_row.count("–") == 2  # the unmeasured job's memory and CPU time show a dash
    page = html.read_text()
    assert page.startswith("<p>Produced by git commit 0123abcd+dirty") and "<table>" in page
    assert re.search(r"<td>total\s*</td>", page) and "Compute cost of every job of the digits study" in page


def test_missing_or_malformed_benchmarks_fail_in_one_line(tmp_path):
    with pytest.raises(DataError, match="no benchmark files"):
        benchmarks.collect(tmp_path)
    (tmp_path / "odd.tsv").write_text("a\tb\n1\t2\n")
    with pytest.raises(DataError, match=r"odd\.tsv lacks the columns \['cpu_time', 'max_rss', 's'\]"):
        benchmarks.collect(tmp_path)


def report_parts(path):
    """A Snakemake report's front page (HTML), results (path -> caption, data URI, ...) and
    categories (name -> subcategory -> paths), as its template embeds them."""
    page = path.read_text()

    def embedded_json(script, variable):
        return json.loads(re.search(rf'<script id="{script}">\s*var {variable} = (.*);\n', page).group(1))

    return (embedded_json("workflow-desc", "workflow_desc"), embedded_json("results", "results"),
            embedded_json("categories", "categories"))


def embedded(result):
    return base64.b64decode(result["data_uri"].split("base64,", 1)[1]).decode()


@pytest.fixture(scope="module")
def report_html(study, tmp_path_factory):
    out = tmp_path_factory.mktemp("report") / "report.html"
    built = snakemake(study.parent.parent, "--report", str(out))
    assert built.returncode == 0, built.stderr[-3000:]
    return out


def test_report_holds_front_page_tables_figures_and_compute_cost(study, report_html):
    front, results, categories = report_parts(report_html)
    by_name = {path.rsplit("/", 1)[-1]: result for path, result in results.items()}
    in_category = {name: {p.rsplit("/", 1)[-1] for paths in subs.values() for p in paths} for name, subs in categories.items()}
    assert in_category["Tables"] == {f"{name}.html" for name in ALL_TABLES}
    assert in_category["Compute cost"] == {"benchmarks.html"} and in_category["Config"] == {"config.html"}
    assert len(in_category["Figures"]) == 6

    # Front page: what the study is, which commit, how to read the tables; short (it opens on its
    # title), the config an item of its own rather than printed on it.
    assert "Noise training against common image corruptions: the digits study" in front
    assert "Rusak" in front and "adversarial noise training (ANT)" in front and "MNIST-C" in front
    assert "batch_size" not in front and len(" ".join(re.sub(r"<[^>]+>", " ", front).split())) < 4000
    assert "System Message" not in front  # every link of the page has its target (Docutils' error box)
    config = embedded(by_name["config.html"])
    assert "batch_size: " in config and "sigma_sweep:" in config
    commit = (study / "report" / "benchmarks.md").read_text().splitlines()[0]
    assert re.match(r"Produced by git commit ([0-9a-f]{40}(\+dirty)?|unknown) \(noisetrain ", commit)
    assert commit.split(";")[0] in front  # the commit line of the compute-cost table, on the front page
    text = " ".join(re.sub(r"<[^>]+>", " ", front).split())  # the page's words, without markup
    assert "ant3x3" in text and "the sigma sweep at 0.3, 0.6" in text
    assert "How to read the tables" in front and "C mean" in front and "percent" in front

    # Every table, rendered, with the caption.
    for name in ALL_TABLES:
        table = by_name[f"{name}.html"]
        assert table["labels"] == {"table": name}
        assert "One table of the digits study" in table["caption"]
        assert "<table>" in embedded(table)
    assert "Top-1 accuracy [%] on digits clean test data" in embedded(by_name["table11.html"])

    # Every figure with its caption.
    for name in ("fig6_accuracy_vs_sigma", "fig7_noise_levels", "corruption_examples", "fig4_adversarial_noise",
                 "fig3_gaussian_eps_examples", "fig8_eps_examples"):
        assert by_name[f"{name}.png"]["mime_type"] == "image/png" and by_name[f"{name}.png"]["caption"].strip()
        assert by_name[f"{name}.png"]["labels"] == {"figure": name}  # the menu lists it by name, not by path
    fig6 = by_name["fig6_accuracy_vs_sigma.png"]["caption"]
    assert "Fig 6 (Fig 2's layout): top-1 accuracy on the corruption benchmark" in fig6

    # The compute cost: one row per job, the train jobs among them, and the total row.
    cost = by_name["benchmarks.html"]
    assert "Compute cost of the digits study" in cost["caption"]
    page = embedded(cost)
    assert page.startswith("<p>Produced by git commit") and re.search(r"<td>total\s*</td>", page)
    rules = re.findall(r"<tr><td>(\w+)\s*</td>", page)
    # every model of the test config and the sweep's best model's replicate, ANT 1x1 adopted from its eps search
    assert rules.count("train") == len(METHODS) and rules.count("adopt_eps_choice") == 1
    assert rules.count("corrupt_testset") == 15 and rules[-1] == "total"


BROWSER = next((found for name in ("chromium", "chromium-browser", "google-chrome") if (found := shutil.which(name))), None)


def first_screen_top(html, png):
    """The top of the front page's text column (x 280-780, y 0-250 of a 1400 x 900 window, left of
    the workflow graph, whose drawing varies run to run) in a real headless browser, as RGB bytes."""
    from PIL import Image

    subprocess.run([BROWSER, "--headless", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--hide-scrollbars",
                    "--window-size=1400,900", "--virtual-time-budget=5000", f"--screenshot={png}", html.as_uri()],
                   capture_output=True, timeout=120, check=True)
    with Image.open(png) as image:
        return image.convert("RGB").crop((280, 0, 780, 250)).tobytes()


@pytest.mark.skipif(BROWSER is None, reason="no chromium installed (CI installs Debian's)")
def test_the_report_opens_on_its_title_in_a_browser(report_html, tmp_path):
    """Snakemake's report centres its main pane vertically; a front page taller than the window
    used to open below its title, which could not be scrolled to. Drawn with the title hidden, the
    top of the first screen must differ: the title is there."""
    page = report_html.read_text()
    hidden = tmp_path / "hidden.html"
    hidden.write_text(page.replace("</head>", "<style>h1 { visibility: hidden !important; }</style></head>", 1))
    top = first_screen_top(report_html, tmp_path / "a.png")
    assert len(set(top)) > 1  # something is drawn there
    assert first_screen_top(report_html, tmp_path / "b.png") == top  # the same page draws the same pixels
    assert first_screen_top(hidden, tmp_path / "c.png") != top  # so the difference is the title, at the top


def tex_tables(study):
    return {name: (study / "tables" / f"{name}.tex").read_text(encoding="utf-8") for name in ALL_TABLES}


def test_tex_tables_are_ascii(study):
    for name, tex in tex_tables(study).items():
        odd = sorted({char for char in tex if ord(char) > 127})
        assert not odd, f"{name}.tex holds characters pdflatex may not typeset: {odd}"


DOCUMENT = "\\documentclass{article}\n\\usepackage{booktabs}\n\\begin{document}\n%s\n\\end{document}\n"


def test_tex_tables_compile(study, tmp_path):
    if shutil.which("pdflatex") is None:
        pytest.skip("pdflatex is not installed (texlive): only the ASCII check of the .tex tables ran")
    for name, tex in tex_tables(study).items():
        (tmp_path / f"{name}.tex").write_text(DOCUMENT % tex)
        result = subprocess.run(["pdflatex", "-interaction=nonstopmode", "-halt-on-error", f"{name}.tex"],
                                cwd=tmp_path, capture_output=True, text=True, timeout=180)
        assert result.returncode == 0, f"{name}.tex does not compile:\n{result.stdout[-2000:]}"
        assert (tmp_path / f"{name}.pdf").read_bytes()[:4] == b"%PDF"
