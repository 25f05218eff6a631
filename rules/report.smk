# Tables and figures, from the tidy records, the prediction cache (every metric of an image-folder
# study, never by rerunning a model) and, for example images, the data files. These jobs take
# seconds: on a cluster they run on the submitting node (localrules). The report_code parameter
# (a hash of lib/noisetrain/report/) reruns them when the table or figure code changes.


localrules:
    config_record,
    tables,
    claims,
    accuracy_table,
    imagenet_tables,
    robustness_tables,
    benchmarks_table,
    figure_sigma_sweep,
    figure_noise_levels,
    figure_corruptions,
    figure_adversarial_noise,
    figure_epsilon_examples,
    figure_accuracy,


# ---------------------------------------------------------------------------------------------
# Arrays: every table from the records of evaluate and measure_robustness


rule tables:
    input:
        unpack(table_inputs),
        script=script("make_tables"),
        records=lambda wildcards: eval_records(),
    output:
        table_outputs(STUDY.tables_of("records")),
    log:
        results("logs/tables.log"),
    benchmark:
        results("benchmarks/tables.tsv")
    conda:
        "../envs/noisetrain.yaml"
    params:
        dataset=STUDY.name,
        corruptions=STUDY.corruptions,
        methods=list(STUDY.methods),
        choice=optional_args,
        out_dir=output_dir,
        report_code=REPORT_CODE,
    shell:
        logged(
            "python {input.script:q} --records {input.records:q} --dataset {params.dataset:q} "
            "--corruptions {params.corruptions:q} --methods {params.methods:q} {params.choice} --out-dir {params.out_dir:q}"
        )


rule claims:
    input:
        unpack(table_inputs),
        script=script("make_claims"),
        records=lambda wildcards: eval_records(),
        correct=lambda wildcards: ours("eval/{model}/correct.npz", model=[*STUDY.methods, *best_gnt_replicates()]),
        distances=lambda wildcards: ours("eval/{model}/distances.npz", model=epsilon_example_models()),
    output:
        table_outputs(STUDY.tables_of("claims")),
    log:
        results("logs/claims.log"),
    benchmark:
        results("benchmarks/claims.tsv")
    conda:
        "../envs/noisetrain.yaml"
    params:
        dataset=STUDY.name,
        corruptions=STUDY.corruptions,
        choice=optional_args,
        out_dir=output_dir,
        report_code=REPORT_CODE,
    shell:
        logged(
            "python {input.script:q} --records {input.records:q} --correct {input.correct:q} --distances {input.distances:q} "
            "--dataset {params.dataset:q} "
            "--corruptions {params.corruptions:q} {params.choice} --out-dir {params.out_dir:q}"
        )


rule figure_sigma_sweep:
    input:
        script=script("plot_sigma_sweep"),
        records=lambda wildcards: accuracy_records(),
    output:
        png=figure_output("fig6_accuracy_vs_sigma"),
        pdf=results("figures/fig6_accuracy_vs_sigma.pdf"),
    log:
        results("logs/figure_sigma_sweep.log"),
    benchmark:
        results("benchmarks/figure_sigma_sweep.tsv")
    conda:
        "../envs/noisetrain.yaml"
    params:
        dataset=STUDY.name,
        report_code=REPORT_CODE,
    shell:
        logged("python {input.script:q} --records {input.records:q} --dataset {params.dataset:q} --out {output.png:q}")


rule figure_corruptions:
    input:
        script=script("plot_corruptions"),
        data=rules.prepare_dataset.output[0],
        sets=corrupted_sets,
    output:
        png=figure_output("corruption_examples"),
        pdf=results("figures/corruption_examples.pdf"),
    log:
        results("logs/figure_corruptions.log"),
    benchmark:
        results("benchmarks/figure_corruptions.tsv")
    conda:
        "../envs/noisetrain.yaml"
    params:
        index=config["report"]["example_index"],
        report_code=REPORT_CODE,
    shell:
        logged(
            "python {input.script:q} --data {input.data:q} --sets {input.sets:q} " "--index {params.index} --out {output.png:q}"
        )


rule figure_adversarial_noise:
    input:
        script=script("plot_adversarial_noise"),
        data=rules.prepare_dataset.output[0],
        uncorrelated=results("models/ant1x1.pt"),
        correlated=[results(f"models/{m}.pt") for m in STUDY.generator_methods(kernel="3x3", stylized_path=None)[:1]],
    output:
        png=figure_output("fig4_adversarial_noise"),
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
        report_code=REPORT_CODE,
    shell:
        logged(
            "python {input.script:q} --data {input.data:q} --uncorrelated {input.uncorrelated:q} {params.correlated} "
            "--seed {params.seed} --out {output.png:q}"
        )


# ---------------------------------------------------------------------------------------------
# Image folders: every metric from the prediction cache, the paper's ImageNet tables (ours beside
# the paper's values) and the figures drawn from them


rule accuracy_table:
    input:
        script=script("collect_accuracy"),
        manifests=expand(rules.predict_model.output[0], model=list(STUDY.eval_models)),
    output:
        results("eval/accuracy.csv"),
    log:
        results("logs/accuracy_table.log"),
    conda:
        "../envs/noisetrain.yaml"
    params:
        report_code=REPORT_CODE,
    shell:
        logged("python {input.script:q} --manifests {input.manifests:q} --out {output:q}")


rule imagenet_tables:
    input:
        script=script("make_imagenet_tables"),
        accuracy=rules.accuracy_table.output[0],
    output:
        table_outputs(STUDY.tables_of("imagenet_c")),
    log:
        results("logs/imagenet_tables.log"),
    conda:
        "../envs/noisetrain.yaml"
    params:
        dataset=STUDY.name,  # the report's caption names the study
        models=json.dumps(STUDY.eval_models, sort_keys=True),
        mce_reference=config["evaluation"]["mce_reference"],
        out_dir=output_dir,
        report_code=REPORT_CODE,
    shell:
        logged(
            "python {input.script:q} --accuracy {input.accuracy:q} --models {params.models:q} "
            "--mce-reference {params.mce_reference:q} --out-dir {params.out_dir:q}"
        )


# Tables 2, 3 and 5 (epsilon* and the attacks) of the measured models, clean accuracy from the cache.
rule robustness_tables:
    input:
        script=script("make_robustness_tables"),
        accuracy=rules.accuracy_table.output[0],
        records=(
            ours("eval/{model}/{metric}.json", model=STUDY.measured(), metric=["noise_robustness", "adversarial"])
            if STUDY.image_folders
            else []
        ),
    output:
        table_outputs(STUDY.tables_of("robustness")),
    log:
        results("logs/robustness_tables.log"),
    conda:
        "../envs/noisetrain.yaml"
    params:
        dataset=STUDY.name,  # the report's caption names the study
        models=json.dumps(STUDY.eval_models, sort_keys=True),
        records_of=config["dataset"]["name"],
        out_dir=output_dir,
        report_code=REPORT_CODE,
    shell:
        logged(
            "python {input.script:q} --accuracy {input.accuracy:q} --records {input.records:q} --models {params.models:q} "
            "--dataset {params.records_of:q} --out-dir {params.out_dir:q}"
        )


rule figure_accuracy:
    input:
        script=script("plot_imagenet"),
        accuracy=rules.accuracy_table.output[0],
        files=rules.list_val_images.output[0],
        images=val_images(),
        jpeg=jpeg_inputs,
    output:
        [figure_output(name) for name in STUDY.accuracy_figures()],
        [results(f"figures/{name}.pdf") for name in STUDY.accuracy_figures()],
    log:
        results("logs/figure_accuracy.log"),
    conda:
        "../envs/noisetrain.yaml"
    params:
        models=json.dumps(STUDY.eval_models, sort_keys=True),
        val=STUDY.val_dir,
        # Fig 9 only with jpeg_compression: no flag at all without it (an empty quoted value vanishes).
        jpeg=f"--jpeg-dir {shell_quote(STUDY.jpeg_dir())}" if STUDY.jpeg_dir() else "",
        example=config["report"]["example_index"],
        out_dir=output_dir,
        report_code=REPORT_CODE,
    shell:
        logged(
            "python {input.script:q} --accuracy {input.accuracy:q} --models {params.models:q} --val {params.val:q} "
            "--files {input.files:q} {params.jpeg} --example-index {params.example} --out-dir {params.out_dir:q}"
        )


# ---------------------------------------------------------------------------------------------
# Every study: example images and the compute cost


rule figure_noise_levels:
    input:
        script=script("plot_noise_levels"),
        data=STUDY.robustness_data(),
    output:
        png=figure_output("fig7_noise_levels"),
        pdf=results("figures/fig7_noise_levels.pdf"),
    log:
        results("logs/figure_noise_levels.log"),
    benchmark:
        results("benchmarks/figure_noise_levels.tsv")
    conda:
        "../envs/noisetrain.yaml"
    params:
        sigmas=STUDY.noise_levels(),
        index=config["report"]["example_index"],
        seed=config["seed"],
        report_code=REPORT_CODE,
    shell:
        logged(
            "python {input.script:q} --data {input.data:q} --sigmas {params.sigmas} "
            "--index {params.index} --seed {params.seed} --out {output.png:q}"
        )


rule figure_epsilon_examples:
    input:
        script=script("plot_epsilon_examples"),
        data=STUDY.robustness_data(),
        records=lambda wildcards: ours("eval/{model}/noise_robustness.json", model=epsilon_example_models()),
        generators=lambda wildcards: ours("eval/{model}/an_generators.pt", model=epsilon_example_models()),
    output:
        fig3=figure_output("fig3_gaussian_eps_examples"),
        fig3_pdf=results("figures/fig3_gaussian_eps_examples.pdf"),
        fig8=figure_output("fig8_eps_examples"),
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
        labels=lambda wildcards: [STUDY.label(model) for model in epsilon_example_models()],
        report_code=REPORT_CODE,
    shell:
        logged(
            "python {input.script:q} --data {input.data:q} --records {input.records:q} "
            "--generators {input.generators:q} --labels {params.labels:q} --index {params.index} --seed {params.seed} "
            "--fig3 {output.fig3:q} --fig8 {output.fig8:q}"
        )


# The compute cost of every job: it waits for every table and figure of the study, so it runs
# last and counts them all.
rule benchmarks_table:
    input:
        script=script("collect_benchmarks"),
        finished=STUDY.targets(),
    output:
        md=results("report/benchmarks.md"),
        html=report(results("report/benchmarks.html"), caption="../report/benchmarks.rst", category="Compute cost"),
    log:
        results("logs/benchmarks_table.log"),
    conda:
        "../envs/noisetrain.yaml"
    params:
        benchmarks=results("benchmarks"),
        dataset=STUDY.name,
        report_code=REPORT_CODE,
    shell:
        logged(
            "python {input.script:q} --benchmarks {params.benchmarks:q} --dataset {params.dataset:q} "
            "--md {output.md:q} --html {output.html:q}"
        )


# The resolved config, the report's Config item (its front page links to it): rewritten whenever
# the config changes (it is the job's parameter).
rule config_record:
    input:
        script=script("write_config"),
    output:
        yaml=results("report/config.yaml"),
        html=report(results("report/config.html"), caption="../report/config.rst", category="Config"),
    log:
        results("logs/config_record.log"),
    conda:
        "../envs/noisetrain.yaml"
    params:
        config=json.dumps(config, sort_keys=True),
        dataset=STUDY.name,
    shell:
        logged(
            "python {input.script:q} --config {params.config:q} --study {params.dataset:q} --yaml {output.yaml:q} "
            "--html {output.html:q}"
        )
