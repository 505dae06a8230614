"""Audio-reactive patterns (seed 002): frame-exact audio features, CPPN pattern library, palettes, transitions."""
