"""Resolves operations the PSP leg left open, and matches the PSP's settlement report against our books."""
