"""Serve a cloudpickled scikit-learn pipeline over HTTP."""
