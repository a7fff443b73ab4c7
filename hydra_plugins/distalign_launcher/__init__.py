"""Hydra plugin package: the distalign Ray launcher (discovered by Hydra's plugin scan)."""
