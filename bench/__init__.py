"""Benchmark harness: our server against a naive Flask app and the in-process ceiling.

``python -m bench.run`` (``make bench``) is the entry point; see ``bench.run``.
"""
