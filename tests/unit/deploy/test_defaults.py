"""One value, one home: the defaults nginx, gunicorn and compose repeat agree with Settings,
and the timeout chain nests (the service answers before gunicorn kills, before nginx gives
up), so a slow prediction always ends in the service's own JSON 504."""

from __future__ import annotations

import re
from pathlib import Path

import yaml

from service.settings import Settings

ROOT = Path(__file__).resolve().parents[3]


def render_default(variable: str) -> str:
    """The default deploy/nginx/render.sh gives a variable (``: "${NAME:=value}"``)."""
    text = (ROOT / "deploy" / "nginx" / "render.sh").read_text()
    return re.search(rf'"\$\{{{variable}:=([^}}]*)\}}"', text).group(1)


def gunicorn_default(variable: str) -> str:
    """The default deploy/gunicorn.conf.py reads a variable with."""
    text = (ROOT / "deploy" / "gunicorn.conf.py").read_text()
    return re.search(rf'os\.environ\.get\("{variable}", "([^"]*)"\)', text).group(1)


def seconds(nginx_time: str) -> float:
    return float(nginx_time.removesuffix("s"))


def test_the_timeouts_nest() -> None:
    predict = Settings(allow_unsigned=True).predict_timeout_s
    gunicorn = float(gunicorn_default("GUNICORN_TIMEOUT"))
    nginx = seconds(render_default("PROXY_READ_TIMEOUT"))
    assert 0 < predict < gunicorn < nginx, (predict, gunicorn, nginx)


def test_the_body_limit_has_one_value() -> None:
    default = Settings(allow_unsigned=True).max_body_bytes
    assert int(render_default("MAX_BODY_BYTES")) == default
    compose = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
    assert int(compose["x-body-limit"]["MAX_BODY_BYTES"]) == default


def test_the_upload_limit_has_one_value() -> None:
    default = Settings(allow_unsigned=True).max_upload_bytes
    assert int(render_default("MAX_UPLOAD_BYTES")) == default
