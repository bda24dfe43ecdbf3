"""Every admin route, once, for the auth tests of every layer (unit, stack, security)."""

from __future__ import annotations

UNKNOWN_SHA = "0" * 64
ADMIN_ROUTES = [
    ("GET", "/admin/models"),
    ("POST", "/admin/models"),
    ("POST", f"/admin/models/{UNKNOWN_SHA}/activate"),
    ("DELETE", f"/admin/models/{UNKNOWN_SHA}"),
]
ADMIN_ROUTE_IDS = ["list", "upload", "activate", "delete"]
