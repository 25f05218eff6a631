# Tables and figures, from the tidy records (and, for example images, the data files) alone.


rule tables:
    input:
        script=f"{SCRIPTS}/make_tables.py",
        records=eval_records,
    output:
        expand("results/{{dataset}}/tables/{name}.{ext}", name=["table11", "summary", "sigma_sweep"], ext=["md", "tex"]),
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
