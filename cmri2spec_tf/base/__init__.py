"""Floor 1, the base: facts about the machine (CPU, GPUs, the device report), files written under a
temporary name and renamed, progress lines, and the usage error every layer may raise.

Imports nothing of the package: every other subpackage may import it.
"""
