"""The HTTP layer: the app factory, routes, admin routes, the OpenAPI document, logging and
gunicorn plumbing.
"""
