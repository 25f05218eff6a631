# Tables and figures, from the tidy records (and, for example images, the data files) alone.


rule tables:
    input:
        script=f"{SCRIPTS}/make_tables.py",
        records=eval_records,
    output:
        expand("results/{{dataset}}/tables/{name}.{ext}", name=TABLE_NAMES, ext=["md", "tex"]),
    params:
        corruptions=CORRUPTIONS,
        methods=list(METHODS),
        out_dir="results/{dataset}/tables",
    log:
        "results/{dataset}/logs/tables.log",
    benchmark:
        "results/{dataset}/benchmarks/tables.tsv"
    conda:
        "../envs/noisetrain.yaml"
    shell:
        "python {input.script} --records {input.records} --dataset {wildcards.dataset} "
        "--corruptions {params.corruptions} --methods {params.methods} --out-dir {params.out_dir} > {log} 2>&1"


rule figure_sigma_sweep:
    input:
        script=f"{SCRIPTS}/plot_sigma_sweep.py",
        records=eval_records,
    output:
        png=report("results/{dataset}/figures/fig6_accuracy_vs_sigma.png", caption="../report/fig6.rst", category="Figures"),
        pdf="results/{dataset}/figures/fig6_accuracy_vs_sigma.pdf",
    log:
        "results/{dataset}/logs/figure_sigma_sweep.log",
    benchmark:
        "results/{dataset}/benchmarks/figure_sigma_sweep.tsv"
    conda:
        "../envs/noisetrain.yaml"
    shell:
        "python {input.script} --records {input.records} --dataset {wildcards.dataset} "
        "--out {output.png} > {log} 2>&1"


rule figure_noise_levels:
    input:
        script=f"{SCRIPTS}/plot_noise_levels.py",
        data="results/{dataset}/data/clean.npz",
    output:
        png=report("results/{dataset}/figures/fig7_noise_levels.png", caption="../report/fig7.rst", category="Figures"),
        pdf="results/{dataset}/figures/fig7_noise_levels.pdf",
    params:
        sigmas=config["sigma_sweep"],
        index=config["report"]["example_index"],
        seed=config["seed"],
    log:
        "results/{dataset}/logs/figure_noise_levels.log",
    benchmark:
        "results/{dataset}/benchmarks/figure_noise_levels.tsv"
    conda:
        "../envs/noisetrain.yaml"
    shell:
        "python {input.script} --data {input.data} --sigmas {params.sigmas} "
        "--index {params.index} --seed {params.seed} --out {output.png} > {log} 2>&1"


rule figure_corruptions:
    input:
        script=f"{SCRIPTS}/plot_corruptions.py",
        data="results/{dataset}/data/clean.npz",
        sets=corrupted_sets,
    output:
        png=report(
            "results/{dataset}/figures/corruption_examples.png", caption="../report/corruptions.rst", category="Figures"
        ),
        pdf="results/{dataset}/figures/corruption_examples.pdf",
    params:
        index=config["report"]["example_index"],
    log:
        "results/{dataset}/logs/figure_corruptions.log",
    benchmark:
        "results/{dataset}/benchmarks/figure_corruptions.tsv"
    conda:
        "../envs/noisetrain.yaml"
    shell:
        "python {input.script} --data {input.data} --sets {input.sets} "
        "--index {params.index} --out {output.png} > {log} 2>&1"


rule figure_adversarial_noise:
    input:
        script=f"{SCRIPTS}/plot_adversarial_noise.py",
        data="results/{dataset}/data/clean.npz",
        uncorrelated="results/{dataset}/models/ant1x1.pt",
        correlated=expand("results/{{dataset}}/models/{method}.pt", method=ant_methods(kernel="3x3", stylized_path=None)[:1]),
    output:
        png=report(
            "results/{dataset}/figures/fig4_adversarial_noise.png", caption="../report/fig4.rst", category="Figures"
        ),
        pdf="results/{dataset}/figures/fig4_adversarial_noise.pdf",
    params:
        correlated=lambda wildcards, input: f"--correlated {input.correlated}" if input.correlated else "",
        seed=config["seed"],
    log:
        "results/{dataset}/logs/figure_adversarial_noise.log",
    benchmark:
        "results/{dataset}/benchmarks/figure_adversarial_noise.tsv"
    conda:
        "../envs/noisetrain.yaml"
    shell:
        "python {input.script} --data {input.data} --uncorrelated {input.uncorrelated} {params.correlated} "
        "--seed {params.seed} --out {output.png} > {log} 2>&1"


rule figure_epsilon_examples:
    input:
        script=f"{SCRIPTS}/plot_epsilon_examples.py",
        data="results/{dataset}/data/clean.npz",
        measured=expand(
            "results/{{dataset}}/eval/{method}/{name}",
            method=["vanilla", BEST_GNT] + (["ant1x1"] if "ant1x1" in METHODS else []),
            name=["noise_robustness.json", "an_generators.pt"],
        ),
    output:
        fig3=report("results/{dataset}/figures/fig3_gaussian_eps_examples.png", caption="../report/fig3.rst", category="Figures"),
        fig3_pdf="results/{dataset}/figures/fig3_gaussian_eps_examples.pdf",
        fig8=report("results/{dataset}/figures/fig8_eps_examples.png", caption="../report/fig8.rst", category="Figures"),
        fig8_pdf="results/{dataset}/figures/fig8_eps_examples.pdf",
    params:
        eval_dir=lambda wildcards, input: os.path.dirname(os.path.dirname(input.measured[0])),
        methods=["vanilla", BEST_GNT] + (["ant1x1"] if "ant1x1" in METHODS else []),
        index=config["report"]["example_index"],
        seed=config["seed"],
    log:
        "results/{dataset}/logs/figure_epsilon_examples.log",
    benchmark:
        "results/{dataset}/benchmarks/figure_epsilon_examples.tsv"
    conda:
        "../envs/noisetrain.yaml"
    shell:
        "python {input.script} --data {input.data} --eval-dir {params.eval_dir} "
        "--methods {params.methods} --index {params.index} --seed {params.seed} "
        "--fig3 {output.fig3} --fig8 {output.fig8} > {log} 2>&1"
