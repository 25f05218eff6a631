"""Stage 2, noise: pixel noise (Gaussian, uniform, Speckle), the clipping-aware rescaling to an exact L2
size, noise generators (appendix A), learning adversarial noise against a fixed classifier, and the
diagnostics of what a generator does to its images (erased fraction, mean noise, fooling rate)."""
