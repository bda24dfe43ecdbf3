"""Serving a loaded model inside one worker: the runtime snapshot, micro-batching, deadlines,
metrics.
"""
