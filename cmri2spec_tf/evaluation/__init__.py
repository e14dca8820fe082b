"""Floor 7, how good a run is: Table 2's metrics on held-out subjects, the lookup baselines,
paired significance, latent probes and pictures, and the listening report.

May import: training, speech, models, synthetic, data, base.
"""
