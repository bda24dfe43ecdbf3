"""Model control: the version store, checking a candidate, packing an artifact, swapping the served
version.
"""
