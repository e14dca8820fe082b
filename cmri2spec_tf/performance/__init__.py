"""Floor 10, the performance figures (bench): training, the input pipeline, inference, voicing.

May import every subpackage below it: experiments, serving, evaluation, training, speech,
models, synthetic, data, base.
"""
