# Tables and figures, from the tidy records (and, for example images, the data files) alone.
# These jobs take seconds: on a cluster they run on the submitting node (localrules).


localrules:
    tables,
    claims,
    benchmarks_table,
    figure_sigma_sweep,
    figure_noise_levels,
    figure_corruptions,
    figure_adversarial_noise,
    figure_epsilon_examples,


rule tables:
    input:
        unpack(table_inputs),
        script=script("make_tables"),
        records=eval_records,
    output:
        expand(results("tables/{name}.{ext}"), name=TABLE_NAMES, ext=["md", "tex"], allow_missing=True),
        # The .html (caption and table) of each is what `snakemake --report` shows.
        [
            report(results(f"tables/{name}.html"), caption="../report/table.rst", category="Tables", labels={"table": name})
            for name in TABLE_NAMES
        ],
    log:
        results("logs/tables.log"),
    benchmark:
        results("benchmarks/tables.tsv")
    conda:
        "../envs/noisetrain.yaml"
    params:
        corruptions=CORRUPTIONS,
        methods=list(METHODS),
        choice=optional_args,
        out_dir=results("tables"),
    shell:
        logged(
            "python {input.script:q} --records {input.records:q} --dataset {wildcards.dataset:q} "
            "--corruptions {params.corruptions:q} --methods {params.methods:q} {params.choice} --out-dir {params.out_dir:q}"
        )


rule claims:
    input:
        unpack(table_inputs),
        script=script("make_claims"),
        records=eval_records,
        correct=correct_files,
    output:
        results("tables/claims.md"),
        results("tables/claims.tex"),
        report(results("tables/claims.html"), caption="../report/table.rst", category="Tables", labels={"table": "claims"}),
    log:
        results("logs/claims.log"),
    benchmark:
        results("benchmarks/claims.tsv")
    conda:
        "../envs/noisetrain.yaml"
    params:
        corruptions=CORRUPTIONS,
        choice=optional_args,
        out_dir=results("tables"),
    shell:
        logged(
            "python {input.script:q} --records {input.records:q} --correct {input.correct:q} --dataset {wildcards.dataset:q} "
            "--corruptions {params.corruptions:q} {params.choice} --out-dir {params.out_dir:q}"
        )


rule figure_sigma_sweep:
    input:
        script=script("plot_sigma_sweep"),
        records=lambda wildcards: accuracy_records() + replicate_records(),
    output:
        png=report(results("figures/fig6_accuracy_vs_sigma.png"), caption="../report/fig6.rst", category="Figures"),
        pdf=results("figures/fig6_accuracy_vs_sigma.pdf"),
    log:
        results("logs/figure_sigma_sweep.log"),
    benchmark:
        results("benchmarks/figure_sigma_sweep.tsv")
    conda:
        "../envs/noisetrain.yaml"
    shell:
        logged("python {input.script:q} --records {input.records:q} --dataset {wildcards.dataset:q} --out {output.png:q}")


rule figure_noise_levels:
    input:
        script=script("plot_noise_levels"),
        data=results("data/clean.npz"),
    output:
        png=report(results("figures/fig7_noise_levels.png"), caption="../report/fig7.rst", category="Figures"),
        pdf=results("figures/fig7_noise_levels.pdf"),
    log:
        results("logs/figure_noise_levels.log"),
    benchmark:
        results("benchmarks/figure_noise_levels.tsv")
    conda:
        "../envs/noisetrain.yaml"
    params:
        sigmas=config["report"]["noise_levels"] or config["sigma_sweep"],
        index=config["report"]["example_index"],
        seed=config["seed"],
    shell:
        logged(
            "python {input.script:q} --data {input.data:q} --sigmas {params.sigmas} "
            "--index {params.index} --seed {params.seed} --out {output.png:q}"
        )


rule figure_corruptions:
    input:
        script=script("plot_corruptions"),
        data=results("data/clean.npz"),
        sets=corrupted_sets,
    output:
        png=report(results("figures/corruption_examples.png"), caption="../report/corruptions.rst", category="Figures"),
        pdf=results("figures/corruption_examples.pdf"),
    log:
        results("logs/figure_corruptions.log"),
    benchmark:
        results("benchmarks/figure_corruptions.tsv")
    conda:
        "../envs/noisetrain.yaml"
    params:
        index=config["report"]["example_index"],
    shell:
        logged(
            "python {input.script:q} --data {input.data:q} --sets {input.sets:q} " "--index {params.index} --out {output.png:q}"
        )


rule figure_adversarial_noise:
    input:
        script=script("plot_adversarial_noise"),
        data=results("data/clean.npz"),
        uncorrelated=results("models/ant1x1.pt"),
        correlated=expand(
            results("models/{method}.pt"), method=generator_methods(kernel="3x3", stylized_path=None)[:1], allow_missing=True
        ),
    output:
        png=report(results("figures/fig4_adversarial_noise.png"), caption="../report/fig4.rst", category="Figures"),
        pdf=results("figures/fig4_adversarial_noise.pdf"),
    log:
        results("logs/figure_adversarial_noise.log"),
    benchmark:
        results("benchmarks/figure_adversarial_noise.tsv")
    conda:
        "../envs/noisetrain.yaml"
    params:
        correlated=lambda wildcards, input: f"--correlated {shell_quote(input.correlated)}" if input.correlated else "",
        seed=config["seed"],
    shell:
        logged(
            "python {input.script:q} --data {input.data:q} --uncorrelated {input.uncorrelated:q} {params.correlated} "
            "--seed {params.seed} --out {output.png:q}"
        )


rule figure_epsilon_examples:
    input:
        script=script("plot_epsilon_examples"),
        data=results("data/clean.npz"),
        records=lambda wildcards: ours("eval/{method}/noise_robustness.json", method=epsilon_example_methods()),
        generators=lambda wildcards: ours("eval/{method}/an_generators.pt", method=epsilon_example_methods()),
    output:
        fig3=report(results("figures/fig3_gaussian_eps_examples.png"), caption="../report/fig3.rst", category="Figures"),
        fig3_pdf=results("figures/fig3_gaussian_eps_examples.pdf"),
        fig8=report(results("figures/fig8_eps_examples.png"), caption="../report/fig8.rst", category="Figures"),
        fig8_pdf=results("figures/fig8_eps_examples.pdf"),
    log:
        results("logs/figure_epsilon_examples.log"),
    benchmark:
        results("benchmarks/figure_epsilon_examples.tsv")
    conda:
        "../envs/noisetrain.yaml"
    params:
        index=config["report"]["example_index"],
        seed=config["seed"],
    shell:
        logged(
            "python {input.script:q} --data {input.data:q} --records {input.records:q} "
            "--generators {input.generators:q} --index {params.index} --seed {params.seed} "
            "--fig3 {output.fig3:q} --fig8 {output.fig8:q}"
        )


# The compute cost of every job: it waits for every table and figure of the study, so it runs
# last and counts them all.
rule benchmarks_table:
    input:
        script=script("collect_benchmarks"),
        finished=lambda wildcards: table_targets() + figure_targets(),
    output:
        md=results("report/benchmarks.md"),
        html=report(results("report/benchmarks.html"), caption="../report/benchmarks.rst", category="Compute cost"),
    log:
        results("logs/benchmarks_table.log"),
    conda:
        "../envs/noisetrain.yaml"
    params:
        benchmarks=results("benchmarks"),
    shell:
        logged(
            "python {input.script:q} --benchmarks {params.benchmarks:q} --dataset {wildcards.dataset:q} "
            "--md {output.md:q} --html {output.html:q}"
        )
