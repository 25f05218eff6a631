"""Stage 2, noise: pixel noise (Gaussian, uniform, Speckle), the clipping-aware rescaling to an exact L2
size, noise generators (appendix A) and learning adversarial noise against a fixed classifier."""
