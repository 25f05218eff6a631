# Every metric from the prediction cache, never by rerunning a model: the tidy accuracy table,
# the paper's ImageNet tables (ours beside the paper's values) and figures.


localrules:
    figure_noise_levels_imagenet,
    figure_epsilon_examples_imagenet,
    accuracy_table,
    imagenet_tables,
    imagenet_robustness_tables,
    imagenet_figures,


rule accuracy_table:
    input:
        script=script("collect_accuracy"),
        manifests=model_manifests(),
    output:
        results("eval/accuracy.csv"),
    log:
        results("logs/accuracy_table.log"),
    conda:
        "../../envs/noisetrain.yaml"
    shell:
        logged("python {input.script:q} --manifests {input.manifests:q} --out {output:q}")


rule imagenet_tables:
    input:
        script=script("make_imagenet_tables"),
        accuracy=results("eval/accuracy.csv"),
    output:
        expand(results("tables/{name}.{ext}"), name=IMAGENET_C_TABLES, ext=["md", "tex"], allow_missing=True),
        [
            report(results(f"tables/{name}.html"), caption="../../report/table.rst", category="Tables", labels={"table": name})
            for name in IMAGENET_C_TABLES
        ],
    log:
        results("logs/imagenet_tables.log"),
    conda:
        "../../envs/noisetrain.yaml"
    params:
        models=json.dumps(EVAL_MODELS, sort_keys=True),
        mce_reference=config["evaluation"]["mce_reference"],
        out_dir=results("tables"),
    shell:
        logged(
            "python {input.script:q} --accuracy {input.accuracy:q} --models {params.models:q} "
            "--mce-reference {params.mce_reference:q} --out-dir {params.out_dir:q}"
        )


# Tables 2, 3 and 5 (epsilon* and the attacks) of the measured models, clean accuracy from the cache.
rule imagenet_robustness_tables:
    input:
        script=script("make_imagenet_robustness_tables"),
        accuracy=results("eval/accuracy.csv"),
        records=robustness_records(),
    output:
        expand(results("tables/{name}.{ext}"), name=ROBUSTNESS_TABLES, ext=["md", "tex"], allow_missing=True),
        [
            report(results(f"tables/{name}.html"), caption="../../report/table.rst", category="Tables", labels={"table": name})
            for name in ROBUSTNESS_TABLES
        ],
    log:
        results("logs/imagenet_robustness_tables.log"),
    conda:
        "../../envs/noisetrain.yaml"
    params:
        models=json.dumps(EVAL_MODELS, sort_keys=True),
        out_dir=results("tables"),
    shell:
        logged(
            "python {input.script:q} --accuracy {input.accuracy:q} --records {input.records:q} --models {params.models:q} "
            "--out-dir {params.out_dir:q}"
        )


rule imagenet_figures:
    input:
        script=script("plot_imagenet"),
        accuracy=results("eval/accuracy.csv"),
        files=results("data/val_files.json"),
        images=val_images(),
        jpeg=jpeg_inputs,
    output:
        [
            report(results(f"figures/{name}.png"), caption=f"../../report/{name.split('_')[0]}.rst", category="Figures")
            for name in ACCURACY_FIGURES
        ],
        expand(results("figures/{name}.pdf"), name=ACCURACY_FIGURES, allow_missing=True),
    log:
        results("logs/imagenet_figures.log"),
    conda:
        "../../envs/noisetrain.yaml"
    params:
        models=json.dumps(EVAL_MODELS, sort_keys=True),
        val=VAL_DIR,
        jpeg_dir=jpeg_dir(),
        example=config["report"]["example_index"],
        out_dir=results("figures"),
    shell:
        logged(
            "python {input.script:q} --accuracy {input.accuracy:q} --models {params.models:q} --val {params.val:q} "
            "--files {input.files:q} --jpeg-dir {params.jpeg_dir:q} --example-index {params.example} --out-dir {params.out_dir:q}"
        )


rule figure_noise_levels_imagenet:
    input:
        script=script("plot_noise_levels"),
        data=results("data/robustness.npz"),
    output:
        png=report(results("figures/fig7_noise_levels.png"), caption="../../report/fig7.rst", category="Figures"),
        pdf=results("figures/fig7_noise_levels.pdf"),
    log:
        results("logs/figure_noise_levels.log"),
    conda:
        "../../envs/noisetrain.yaml"
    params:
        sigmas=config["report"]["noise_levels"],
        index=config["report"]["example_index"],
        seed=config["seed"],
    shell:
        logged(
            "python {input.script:q} --data {input.data:q} --sigmas {params.sigmas} "
            "--index {params.index} --seed {params.seed} --out {output.png:q}"
        )


rule figure_epsilon_examples_imagenet:
    input:
        script=script("plot_epsilon_examples"),
        data=results("data/robustness.npz"),
        records=ours("eval/{model}/noise_robustness.json", model=ROBUSTNESS_MODELS),
        generators=ours("eval/{model}/an_generators.pt", model=ROBUSTNESS_MODELS),
    output:
        fig3=report(results("figures/fig3_gaussian_eps_examples.png"), caption="../../report/fig3.rst", category="Figures"),
        fig3_pdf=results("figures/fig3_gaussian_eps_examples.pdf"),
        fig8=report(results("figures/fig8_eps_examples.png"), caption="../../report/fig8.rst", category="Figures"),
        fig8_pdf=results("figures/fig8_eps_examples.pdf"),
    log:
        results("logs/figure_epsilon_examples.log"),
    conda:
        "../../envs/noisetrain.yaml"
    params:
        index=config["report"]["example_index"],
        seed=config["seed"],
    shell:
        logged(
            "python {input.script:q} --data {input.data:q} --records {input.records:q} "
            "--generators {input.generators:q} --index {params.index} --seed {params.seed} "
            "--fig3 {output.fig3:q} --fig8 {output.fig8:q}"
        )
