"""Floor 1, the base: facts about the machine (CPU, GPUs, the device report), files written under a
temporary name and renamed, progress lines, librosa imported so that parallel processes never
break numba's cache, and the usage error every layer may raise.

Imports nothing of the package: every other subpackage may import it.
"""
