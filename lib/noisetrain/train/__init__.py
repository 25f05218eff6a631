"""Stage 3, training: one trainer, method steps registered by kind (vanilla, GNT, GNT_mult, Speckle,
ANT), checkpoints with exact resume."""
