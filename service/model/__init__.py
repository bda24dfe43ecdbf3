"""The model: reading, verifying and checking an artifact, its input schema, parsing requests
against it, predicting.
"""
