"""Stage 3, training: one trainer, method steps registered by kind (vanilla, GNT, GNT_mult, Speckle,
ANT, and the adversarial-training baselines PGD AT and DDN AT), checkpoints with exact resume."""
