"""Benchmarks: speed and cost claims, each printed with its reference and ratio (issue 7).

``python -m bench`` runs them all; ``python -m bench timer`` runs one. See docs/performance.md.
"""
