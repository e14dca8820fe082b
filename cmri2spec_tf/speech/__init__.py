"""Floor 5, a mel spectrogram as speech: voiced (Griffin-Lim, the neural vocoder and its training
losses), pictured (spectrogram figures) and scored (STOI, ESTOI, MCD, PESQ).

May import: models, synthetic, data, base.
"""
