"""Super-resolution of coarse LST with fine NDVI guidance (SIF-NN-SR) and its evaluation."""
