"""Floor 4, the networks: the translator and discriminator of Table 1, Lip2AudSpec, the vocoder's
generator, and the dtype policy (precision) every model is built under.

May import: synthetic, data, base.
"""
