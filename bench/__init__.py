"""Benchmarks of the payments service against the design teams would otherwise pick (``bench/README.md``).

Everything runs on this machine, on 127.0.0.1, and compares systems side by side in one invocation: the
numbers worth reading are the ratios, because the machine (2 shared cores) is noisy.
"""
