"""ImageNet-C tables and figures from a synthetic accuracy frame with hand-computable numbers."""

import numpy as np
import pandas as pd
import pytest
from PIL import Image

from noisetrain.errors import InputError
from noisetrain.measure.corruption_error import ALEXNET_ERRORS, ALEXNET_SEVERITY_ERRORS, BENCHMARK_CORRUPTIONS
from noisetrain.report import imagenet_figures as figs
from noisetrain.report import paper_tables as it
from noisetrain.report.paper import PAPER_LABELS, paper_value

IMAGES = 1000
# top1(model, corruption i, severity s) = a + i + 2 * (3 - s): the mean over severities is a + i,
# the mean over the 15 corruptions a + 7, over the 12 without noise (i = 3..14) a + 8.5;
# top5 = top1 + 20; clean = a + 30.
BASE = {"vanilla": 30, "gnt": 40, "new": 20, "inception": 35, "at": 25, "alexnet": 10}
MODELS = {
    "vanilla": {"label": "Vanilla", "architecture": "resnet50", "paper_model": "vanilla", "source": "method"},
    "gnt": {
        "label": "GNT s0.5",
        "architecture": "resnet50",
        "paper_model": "gnt_s0.5",
        "source": "method",
        "trained_on": {"gaussian_noise"},
    },
    "new": {"label": "New method", "architecture": "resnet50", "paper_model": None, "source": "method"},
    "inception": {
        "label": "GNT Inception",
        "architecture": "inception_v3",
        "paper_model": "gnt_s0.5_inception_v3",
        "source": "method",
        "trained_on": {"gaussian_noise"},
    },
    "at": {"label": "AT RN50", "architecture": "resnet50", "paper_model": "shafahi_at", "source": "external"},
    "alexnet": {"label": "AlexNet", "architecture": "alexnet", "paper_model": "vanilla_alexnet", "source": "external"},
}


def accuracy_frame(models=BASE, drop=None, corruptions=BENCHMARK_CORRUPTIONS, severities=(1, 2, 3, 4, 5)):
    """The synthetic frame; ``corruptions`` / ``severities``: a partial evaluation (i stays the
    corruption's index among the 15, so the formula above holds)."""
    rows = []
    for model, a in models.items():
        rows.append({"model": model, "corruption": "clean", "severity": 0, "top1": a + 30.0, "top5": a + 50.0, "images": IMAGES})
        for i, corruption in enumerate(BENCHMARK_CORRUPTIONS):
            if drop == (model, corruption) or corruption not in corruptions:
                continue
            for s in severities:
                top1 = a + i + 2.0 * (3 - s)
                rows.append(
                    {"model": model, "corruption": corruption, "severity": s, "top1": top1, "top5": top1 + 20, "images": IMAGES}
                )
    return pd.DataFrame(rows)


@pytest.fixture(scope="module")
def accuracy():
    return accuracy_frame()


def row(table, label, source="ours"):
    hit = table[(table.model == label) & (table.source == source)]
    assert len(hit) == 1, (label, source, table[["model", "source"]])
    return hit.iloc[0]


def test_table4_cells_and_brackets(accuracy):
    table = it.build_table("table4", accuracy, MODELS)
    vanilla = row(table, "Vanilla")
    assert list(vanilla[2:]) == ["60.0", "37.0", "57.0", "38.5", "58.5"]
    gnt = row(table, "GNT s0.5")  # trained on Gaussian noise: the averages over all 15 are bracketed
    assert list(gnt[2:]) == ["70.0", "(47.0)", "(67.0)", "48.5", "68.5"]
    # the paper's row right below ours, as printed (its brackets too)
    paper = row(table, "GNT σ=0.5", "paper (Table 4)")
    assert list(paper[2:]) == ["75.9", "(49.4)", "(70.6)", "47.1", "68.3"]
    assert table.index[table.model == "GNT σ=0.5"][0] == table.index[table.model == "GNT s0.5"][0] + 1
    # values beside ours equal the CSV's
    for key, title in it.TABLES["table4"].columns:
        assert float(row(table, "Vanilla RN50", "paper (Table 4)")[title]) == paper_value("Table 4", "imagenet", "vanilla", key)


def test_table9_cells(accuracy):
    table = it.build_table("table9", accuracy, MODELS)
    vanilla = row(table, "Vanilla")
    assert vanilla["mean"] == "37.0"
    assert [vanilla[it.SHORT_NAMES[c]] for c in BENCHMARK_CORRUPTIONS] == [f"{30 + i:.1f}" for i in range(15)]
    assert row(table, "GNT s0.5")["mean"] == "(47.0)"
    paper = row(table, "Vanilla RN50", "paper (Table 9)")
    assert paper["mean"] == "39" and paper["Gauss"] == "29"  # the paper's integers stay integers


def test_table10_ce_published_and_own_reference(accuracy):
    table = it.build_table("table10", accuracy, MODELS)
    vanilla = row(table, "Vanilla")
    expected = {c: 100 * (1 - (30 + i) / 100) / ALEXNET_ERRORS[c] for i, c in enumerate(BENCHMARK_CORRUPTIONS)}
    assert [vanilla[it.SHORT_NAMES[c]] for c in BENCHMARK_CORRUPTIONS] == [f"{expected[c]:.1f}" for c in BENCHMARK_CORRUPTIONS]
    assert vanilla["mCE"] == f"{np.mean(list(expected.values())):.1f}"
    assert row(table, "GNT s0.5")["mCE"].startswith("(")
    assert row(table, "Vanilla RN50", "paper (Table 10)")["mCE"] == "77"
    assert it.build_table("table10", accuracy, MODELS, mce_reference="published").equals(table)

    half = it.build_table("table10", accuracy, MODELS, mce_reference=dict.fromkeys(BENCHMARK_CORRUPTIONS, 0.5))
    assert row(half, "Vanilla")["Gauss"] == "140.0"  # 100 * 0.70 / 0.5
    assert row(half, "Vanilla")["mCE"] == "126.0"  # 200 * (0.70 - 0.07)
    own = it.build_table("table10", accuracy, MODELS, mce_reference="alexnet")  # an AlexNet evaluated by the config
    assert row(own, "Vanilla")["Gauss"] == f"{100 * 70 / 90:.1f}"


def test_a_corruption_not_evaluated_is_a_dash_and_so_are_the_means_over_it():
    frame = accuracy_frame(drop=("vanilla", "fog"))
    table = it.build_table("table10", frame, MODELS)
    vanilla = row(table, "Vanilla")
    assert pd.isna(vanilla["Fog"]) and pd.isna(vanilla["mCE"])  # rendered as the missing-cell dash
    assert vanilla["Gauss"] == f"{100 * 0.70 / ALEXNET_ERRORS['gaussian_noise']:.1f}"
    gnt = [100 * (1 - (40 + i) / 100) / ALEXNET_ERRORS[c] for i, c in enumerate(BENCHMARK_CORRUPTIONS)]
    assert row(table, "GNT s0.5")["mCE"] == f"({np.mean(gnt):.1f})"  # the other models are complete
    table9 = it.build_table("table9", frame, MODELS)
    assert pd.isna(row(table9, "Vanilla")["mean"]) and row(table9, "Vanilla")["Gauss"] == "30.0"
    assert pd.isna(row(it.build_table("table4", frame, MODELS), "Vanilla")["IN-C w/o noise top-1"])  # fog is one of the 12
    text = it.caption("table9", it.Measured(frame), MODELS, table=table9)
    assert "Means over corruptions need all 15 benchmark corruptions" in text and "Vanilla lacks fog: shown as –." in text
    assert "Evaluated at severities" not in text  # every corruption evaluated was at all five
    with pytest.raises(InputError, match="not a model"):
        it.build_table("table10", accuracy_frame(), MODELS, mce_reference="resnet18")


# A partial evaluation (as the smoke study runs): 3 corruptions at severities 1 and 3. With
# top1 = a + i + 2 * (3 - s), severity 1 gives a + i + 4 and severity 3 gives a + i: mean a + i + 2.
PARTIAL = ("gaussian_noise", "fog", "jpeg_compression")  # i = 0, 9, 14


def partial_frame():
    return accuracy_frame(corruptions=PARTIAL, severities=(1, 3))


def test_partial_evaluation_per_corruption_means_and_dashes():
    frame = partial_frame()
    table = it.build_table("table9", frame, MODELS)
    vanilla = row(table, "Vanilla")  # a = 30
    assert (vanilla["Gauss"], vanilla["Fog"], vanilla["JPEG"]) == ("32.0", "41.0", "46.0")
    assert pd.isna(vanilla["mean"])
    assert all(pd.isna(vanilla[it.SHORT_NAMES[c]]) for c in BENCHMARK_CORRUPTIONS if c not in PARTIAL)
    assert row(it.build_table("table13", frame, MODELS), "GNT Inception")["Gauss"] == "37.0"  # a = 35
    assert pd.isna(row(it.build_table("table13", frame, MODELS), "GNT Inception")["All"])
    summary = row(it.build_table("table4", frame, MODELS), "Vanilla")
    assert summary["clean"] == "60.0" and summary[3:].isna().all()
    assert row(it.build_table("table1", frame, MODELS), "AT RN50")[2:].isna().all()

    text = it.caption("table9", it.Measured(frame), MODELS, table=table)
    assert "mean over the evaluated severities" in text and "five severities" not in text
    assert "Evaluated at severities 1, 3 of 5: per-corruption values average those." in text
    assert (
        "Means over corruptions need all 15 benchmark corruptions; this run evaluated 3 "
        "(gaussian_noise, fog, jpeg_compression): shown as –." in text
    )
    assert "Each CE" not in text and "not the paper's metric" not in text  # no mean shown
    assert "the 12 others" in it.caption("table4", it.Measured(frame), MODELS)
    assert it.caption("table14", it.Measured(frame), MODELS).count("Evaluated") == 0  # clean only


def test_partial_evaluation_ce_against_the_published_per_severity_alexnet():
    table = it.build_table("table10", partial_frame(), MODELS)
    vanilla = row(table, "Vanilla")
    # vanilla's errors at severities 1 and 3 over AlexNet's published errors at the same severities
    # (hendrycks/robustness: gaussian_noise 0.69528, 0.93554; fog 0.67474, 0.84378; JPEG 0.51002, 0.57294)
    gauss = 100 * (0.66 + 0.70) / (0.69528 + 0.93554)  # top-1 34 and 30
    fog = 100 * (0.57 + 0.61) / (0.67474 + 0.84378)  # top-1 43 and 39
    jpeg = 100 * (0.52 + 0.56) / (0.51002 + 0.57294)  # top-1 48 and 44
    assert (vanilla["Gauss"], vanilla["Fog"], vanilla["JPEG"]) == (f"{gauss:.1f}", f"{fog:.1f}", f"{jpeg:.1f}")
    assert (vanilla["Gauss"], vanilla["Fog"], vanilla["JPEG"]) == ("83.4", "77.7", "99.7")
    assert pd.isna(vanilla["mCE"]) and pd.isna(vanilla["Shot"])
    text = it.caption("table10", it.Measured(partial_frame()), MODELS, table=table)
    assert "summed over the evaluated severities" in text and "Evaluated at severities 1, 3 of 5" in text
    assert "Means over corruptions and the mCE need all 15 benchmark corruptions; this run evaluated 3" in text


def test_partial_evaluation_ce_against_an_evaluated_alexnet():
    frame = partial_frame()
    # the reference AlexNet (a = 10) lacks fog at severity 3: vanilla's fog CE (at 1 and 3) is undefined
    frame = frame[~((frame.model == "alexnet") & (frame.corruption == "fog") & (frame.severity == 3))]
    table = it.build_table("table10", frame, MODELS, mce_reference="alexnet")
    vanilla = row(table, "Vanilla")
    assert vanilla["Gauss"] == f"{100 * (0.66 + 0.70) / (0.86 + 0.90):.1f}" == "77.3"
    assert pd.isna(vanilla["Fog"]) and pd.isna(vanilla["mCE"])
    text = it.caption("table10", it.Measured(frame), MODELS, "alexnet", table)
    assert "CE reference: the errors of 'alexnet' evaluated here." in text
    assert "CE shown as – where the reference has no error at the severities the model was evaluated at" in text
    assert "Vanilla: fog" in text and "Vanilla: gaussian_noise" not in text


def test_all_corruptions_at_one_severity_give_the_means_over_it():
    frame = accuracy_frame(severities=(2,))  # top1 = a + i + 2
    vanilla = row(it.build_table("table4", frame, MODELS), "Vanilla")
    assert list(vanilla[2:]) == ["60.0", "39.0", "59.0", "40.5", "60.5"]
    assert row(it.build_table("table9", frame, MODELS), "Vanilla")["mean"] == "39.0"
    # mCE over severity 2: each CE against AlexNet's published severity-2 error
    ce = [100 * (1 - (32 + i) / 100) / ALEXNET_SEVERITY_ERRORS[c][1] for i, c in enumerate(BENCHMARK_CORRUPTIONS)]
    assert ALEXNET_SEVERITY_ERRORS["gaussian_noise"][1] == 0.82542
    assert row(it.build_table("table10", frame, MODELS), "Vanilla")["Gauss"] == f"{100 * 0.68 / 0.82542:.1f}"
    assert row(it.build_table("table10", frame, MODELS), "Vanilla")["mCE"] == f"{np.mean(ce):.1f}"
    text = it.caption("table4", it.Measured(frame), MODELS)
    assert "Evaluated at severities 2 of 5: per-corruption values average those." in text
    assert "where the paper's use all 5 severities; they are not the paper's metric" in text
    assert "need all 15" not in text
    text10 = it.caption("table10", it.Measured(frame), MODELS)
    assert "The means over corruptions and the mCE use these per-corruption values" in text10


def test_write_tables_of_a_partial_evaluation(tmp_path):
    frame = partial_frame()
    for reference in ("published", "alexnet"):
        built = it.write_imagenet_tables(frame, MODELS, tmp_path / reference, mce_reference=reference)
        assert set(built) == set(it.IMAGENET_TABLE_NAMES)
        for name in it.IMAGENET_TABLE_NAMES:
            for ext in ("md", "tex", "html"):
                assert (tmp_path / reference / f"{name}.{ext}").stat().st_size > 0
    md = (tmp_path / "published" / "table10.md").read_text()
    line = next(line for line in md.splitlines() if line.startswith("| Vanilla ") and "ours" in line)
    assert [cell.strip() for cell in line.split("|")[3:6]] == ["–", "83.4", "–"]  # mCE, Gauss, Shot
    assert "Evaluated at severities 1, 3 of 5" in md
    assert "severities 1, 3 of 5" in (tmp_path / "published" / "table10.tex").read_text()


def test_membership_and_paper_only_rows(accuracy):
    built = {name: it.build_table(name, accuracy, MODELS) for name in it.IMAGENET_TABLE_NAMES}
    ours = {name: set(t.model[t.source == "ours"]) for name, t in built.items()}
    assert {n for n, labels in ours.items() if "GNT Inception" in labels} == {"table13", "table14"}
    assert {n for n, labels in ours.items() if "AT RN50" in labels} == {"table1", "table8"}
    assert {n for n, labels in ours.items() if "New method" in labels} == {"table4", "table9", "table10"}
    assert {n for n, labels in ours.items() if "Vanilla" in labels} == {
        "table1",
        "table4",
        "table8",
        "table9",
        "table10",
        "table15",
        "table16",
    }
    assert built["table4"].model.iloc[-1] == "New method"  # no paper row: after the paper's rows
    # the paper's models we did not evaluate, marked as such, with the CSV's values
    augmix = row(built["table4"], "AugMix [Hendrycks et al., 2020]", "paper (Table 4), not evaluated here")
    assert float(augmix["IN-C top-1"]) == paper_value("Table 4", "imagenet", "augmix", "c_mean")
    ford = row(built["table13"], "Vanilla InceptionV3 [Ford et al., 2019]", "paper (Table 13), not evaluated here")
    assert ford["All"] == "38.8"
    assert row(built["table15"], "Vanilla DN121", "paper (Table 15), not evaluated here")["clean"] == "74.4"
    assert row(built["table15"], "ANT 1x1", "paper (Table 15), not evaluated here")["IN-C top-1"] == "(51.1)"
    incep = row(built["table13"], "GNT Inception")
    assert incep["All"] == "(42.0)" and incep["Gauss"] == "35.0"
    assert row(built["table14"], "GNT Inception")["clean"] == "65.0"
    assert row(built["table1"], "AT RN50")["IN-C w/o noise top-1"] == "33.5"
    every_paper_row = {m for name, spec in it.TABLES.items() for m in it.paper_models(spec.paper_table)}
    assert every_paper_row <= set(PAPER_LABELS["imagenet"])


def test_write_tables(accuracy, tmp_path):
    built = it.write_imagenet_tables(accuracy, MODELS, tmp_path)
    assert set(built) == set(it.IMAGENET_TABLE_NAMES)
    for name in it.IMAGENET_TABLE_NAMES:
        for ext in ("md", "tex", "html"):
            assert (tmp_path / f"{name}.{ext}").stat().st_size > 0
    md = (tmp_path / "table10.md").read_text()
    assert "1,000 images" in md and "AlexNet's published" in md
    paper_line = next(line for line in md.splitlines() if "Vanilla RN50" in line and "paper (Table 10)" in line)
    assert "| 77 " in paper_line.replace("  ", " ") and "77.0" not in paper_line  # printed precision kept
    assert "Values in brackets" in (tmp_path / "table4.md").read_text()
    assert "Values in brackets" not in (tmp_path / "table1.md").read_text()  # no bracketed cell there
    full = accuracy.assign(images=50_000)
    it.write_imagenet_tables(full, MODELS, tmp_path / "full")
    assert "prediction cache" not in (tmp_path / "full" / "table4.md").read_text()


@pytest.mark.slow
def test_figures(accuracy, tmp_path):
    figs.write_fig5(accuracy, MODELS, tmp_path / "fig5.png", selected=["vanilla", "gnt"])
    rng = np.random.default_rng(0)
    jpeg = rng.integers(0, 256, (224, 224, 3), dtype=np.uint8)
    clean = tmp_path / "clean.png"
    Image.fromarray(rng.integers(0, 256, (300, 400, 3), dtype=np.uint8)).save(clean)
    figs.write_fig9(jpeg, clean, tmp_path / "fig9.png")
    for name in ("fig5.png", "fig5.pdf", "fig9.png", "fig9.pdf"):
        assert (tmp_path / name).stat().st_size > 0
    assert not list(tmp_path.glob(".*tmp*"))
    assert figs.imagenet_c_crop(Image.open(clean), (224, 224)).size == (224, 224)
    with pytest.raises(InputError):
        figs.posterize_vs_jpeg(jpeg, clean, bits=(0,))


def test_fig5_marks_corruptions_not_evaluated_and_keeps_equal_models_apart():
    """A partial protocol (3 of 15 corruptions at severity 2, as the smoke study): the other panels
    say so and hold no clean dot; models of equal accuracy are drawn side by side, not on top."""
    partial = accuracy_frame({"vanilla": 30, "gnt": 30, "new": 30}, corruptions=BENCHMARK_CORRUPTIONS[:3], severities=(2,))
    fig = figs.accuracy_vs_severity(partial, MODELS)
    panels = fig.axes[:15]
    assert [ax.get_title().endswith("not evaluated") for ax in panels] == [False] * 3 + [True] * 12
    assert all(not ax.lines for ax in panels[3:])
    lines = panels[0].lines
    assert [line.get_label() for line in lines] == ["Vanilla", "GNT s0.5", "New method"]
    assert len({tuple(line.get_xdata()) for line in lines}) == 3  # equal values, three visible lines
    assert len({line.get_marker() for line in lines}) == 3
    assert [t.get_text() for t in fig.legends[0].get_texts()] == ["Vanilla", "GNT s0.5", "New method"]
    figs.plt.close(fig)


ANT_DEPTHS = {
    "ant1x1": {"label": "ANT 1x1", "architecture": "resnet50", "paper_model": "ant1x1", "generator_depth": 4,
               "generator_kernel": "1x1", "depth_ablation": True, "trained_on": ["gaussian_noise"], "position": 1},
    "ant1x1_depth2": {"label": "ANT 1x1 depth 2", "architecture": "resnet50", "paper_model": "ant1x1_depth2",
                      "generator_depth": 2, "generator_kernel": "1x1", "depth_ablation": True, "position": 2},
    "ant3x3": {"label": "ANT 3x3", "architecture": "resnet50", "paper_model": "ant3x3", "generator_depth": 4,
               "generator_kernel": "3x3", "depth_ablation": False, "position": 3},
    "small": {"label": "ANT 1x1 (mobilenet_v3_small)", "architecture": "mobilenet_v3_small", "paper_model": None,
              "generator_depth": 4, "generator_kernel": "1x1", "depth_ablation": True, "position": 4},
    "vanilla": {**MODELS["vanilla"], "position": 0},
}


def test_table16_puts_each_generator_depth_beside_the_paper_and_counts_its_parameters():
    accuracy = accuracy_frame({"vanilla": 30, "ant1x1": 45, "ant1x1_depth2": 44, "ant3x3": 46, "small": 5})
    table = it.build_table("table16", accuracy, ANT_DEPTHS)
    depth4 = row(table, "ANT 1x1")
    assert depth4["generator parameters"] == "983" and depth4["clean"] == "75.0"
    assert depth4["IN-C top-1"] == "(52.0)" and depth4["IN-C w/o noise top-1"] == "53.5"  # a + 7, a + 8.5
    assert row(table, "ANT 1x1 depth 2")["generator parameters"] == "143"  # the paper's NG_2 count
    labels = list(table.model)
    # ours right above the paper's row of the same depth; the depth-4 model is the paper's depth-4 row
    assert labels.index("ANT 1x1") + 1 == labels.index("ANT 1x1, generator depth 4")
    assert labels.index("ANT 1x1 depth 2") + 1 == labels.index("ANT 1x1, generator depth 2")
    assert "ANT 3x3" not in labels  # not the ablation's
    assert labels[-1] == "ANT 1x1 (mobilenet_v3_small)"  # another network: a row of its own, after the paper's
    # Table 4 shows the depth-4 model (the paper's ANT 1x1) but not the ablation's other depths
    table4 = set(it.build_table("table4", accuracy, ANT_DEPTHS).model)
    assert "ANT 1x1" in table4 and "ANT 1x1 depth 2" not in table4


def test_rows_follow_the_models_positions():
    accuracy = accuracy_frame({"vanilla": 30, "ant1x1": 45, "ant3x3": 46})
    ours = it.build_table("table4", accuracy, {"ant3x3": ANT_DEPTHS["ant3x3"], "ant1x1": ANT_DEPTHS["ant1x1"],
                                               "vanilla": ANT_DEPTHS["vanilla"]})
    assert list(ours.model[ours.source == "ours"]) == ["Vanilla", "ANT 1x1", "ANT 3x3"]


def test_fig2_draws_single_sigmas_as_dots_and_sets_as_lines(tmp_path):
    models = {"vanilla": {"label": "Vanilla"}, "gnt_s0.5": {"label": "GNT 0.5", "sigmas": [0.5]},
              "gnt_s1": {"label": "GNT 1", "sigmas": [1.0]}, "mult": {"label": "mult", "sigmas": [0.08, 0.12, 0.38]}}
    accuracy = accuracy_frame({"vanilla": 30, "gnt_s0.5": 40, "gnt_s1": 35, "mult": 38})
    fig = figs.accuracy_vs_sigma(accuracy, models)
    left = fig.axes[0]
    points = {tuple(line.get_xdata()): tuple(line.get_ydata()) for line in left.lines}
    assert points[(0.5,)] == (47.0,) and points[(1.0,)] == (42.0,) and points[(0.0,)] == (37.0,)  # a + 7
    assert points[(0.08, 0.38)] == (45.0, 45.0)  # the set's line spans its sigmas
    assert "15 of 15" in left.get_title() and "12 of 12" in fig.axes[1].get_title()
    figs.write_fig2(accuracy, models, tmp_path / "fig2.png")
    assert (tmp_path / "fig2.png").stat().st_size > 0 and (tmp_path / "fig2.pdf").stat().st_size > 0
    with pytest.raises(InputError, match="Fig 2 needs GNT models"):
        figs.accuracy_vs_sigma(accuracy, {"vanilla": {"label": "Vanilla"}})


def test_the_job_graphs_list_of_imagenet_c_tables_is_the_specs():
    from noisetrain.report import outputs

    assert it.IMAGENET_TABLE_NAMES == outputs.IMAGENET_C_TABLES  # Snakemake lists them without importing pandas
