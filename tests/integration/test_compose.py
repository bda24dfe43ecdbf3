"""Check docker-compose.yml and the Dockerfile against deploy/, without a Docker engine.

`docker-compose config` validates the file and prints it resolved (absolute paths,
interpolated variables, anchors merged); the tests read that output, so they see what
compose would run. The cross-checks catch the drift a syntax check cannot: a port, path
or variable renamed on one side only. docker-compose missing is a FAILURE, not a skip
(.ci/run installs it).
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shlex
import shutil
import subprocess
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import yaml

from bench.ablation import conf_value
from deploy import compose as compose_up
from deploy import haproxy_config, monitor
from deploy.stack import INFLIGHT_PER_WORKER
from service.settings import Settings

ROOT = Path(__file__).resolve().parents[2]
COMPOSE_FILE = ROOT / "docker-compose.yml"
DOCKERFILE = ROOT / "Dockerfile"
MAKEFILE = ROOT / "Makefile"
DOCKERIGNORE = ROOT / ".dockerignore"
NGINX_DIR = ROOT / "deploy" / "nginx"
RENDER_SH = NGINX_DIR / "render.sh"
PROMETHEUS_DIR = ROOT / "deploy" / "prometheus"
BINARY_DIR = ROOT / "binary"
GUNICORN_CONF = "deploy/gunicorn.conf.py"


def makefile_packages(variable: str) -> set[str]:
    """The Debian packages of a Makefile list of COMMAND:PACKAGE pairs, $(LISTS) expanded."""
    text = MAKEFILE.read_text().replace("\\\n", " ")
    lists = dict(re.findall(r"^([A-Z_]+)\s*:?=\s*(.*)$", text, flags=re.MULTILINE))
    packages = set()
    for word in lists[variable].split():
        if nested := re.fullmatch(r"\$\((\w+)\)", word):
            packages |= makefile_packages(nested.group(1))
        elif ":" in word:
            packages.add(word.split(":", 1)[1])
    return packages


# Tools the test image needs for `make test`: make, and what `make test` checks it has first.
TEST_IMAGE_PACKAGES = {"make"} | makefile_packages("TEST_TOOLS")
# render.sh's defaults for these suit a laptop (loopback, unix socket, repo path), not a container.
NGINX_REQUIRED_ENV = {"NGINX_LISTEN", "METRICS_LISTEN", "UPSTREAM", "MODEL_DIR"}
DEFAULT_MAX_BODY_BYTES = str(Settings.max_body_bytes)  # render.sh agrees (test_defaults)


# ---- docker-compose config ----------------------------------------------------------------


def run_compose_config() -> subprocess.CompletedProcess[str]:
    """`docker-compose -f docker-compose.yml config` from the repo root, free of COMPOSE_* env."""
    binary = shutil.which("docker-compose")
    if binary is None:
        pytest.fail(
            "docker-compose not found on PATH: install it (apt-get install docker-compose, "
            "or .ci/run) so docker-compose.yml can be validated; no Docker engine is needed"
        )
    env = {key: value for key, value in os.environ.items() if not key.startswith("COMPOSE_")}
    return subprocess.run(
        [binary, "-f", str(COMPOSE_FILE), "config"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


@pytest.fixture(scope="module")
def compose_run() -> subprocess.CompletedProcess[str]:
    return run_compose_config()


@pytest.fixture(scope="module")
def compose(compose_run: subprocess.CompletedProcess[str]) -> dict[str, Any]:
    """The resolved compose file, as compose itself would run it."""
    if compose_run.returncode != 0:
        pytest.fail(f"docker-compose config failed:\n{compose_run.stderr}")
    config = yaml.safe_load(compose_run.stdout)
    assert isinstance(config, dict), compose_run.stdout
    return config


def service(compose: dict[str, Any], name: str) -> dict[str, Any]:
    services = compose.get("services", {})
    assert name in services, f"no service {name!r} in docker-compose.yml: {sorted(services)}"
    return services[name]


def environment(svc: dict[str, Any]) -> dict[str, str]:
    env = svc.get("environment") or {}
    if isinstance(env, list):  # KEY=value list form
        env = dict(item.split("=", 1) for item in env)
    return {key: "" if value is None else str(value) for key, value in env.items()}


@dataclass(frozen=True)
class Mount:
    kind: str
    source: str
    target: str
    read_only: bool


def mounts(svc: dict[str, Any]) -> list[Mount]:
    """Volumes in either syntax: compose prints long syntax as dicts, short as strings."""
    found = []
    for volume in svc.get("volumes", []):
        if isinstance(volume, dict):
            found.append(
                Mount(
                    kind=volume.get("type", "volume"),
                    source=str(volume.get("source", "")),
                    target=str(volume["target"]),
                    read_only=bool(volume.get("read_only", False)),
                )
            )
            continue
        source, target, *mode = volume.split(":")
        kind = "bind" if source.startswith(("/", ".", "~")) else "volume"
        read_only = bool(mode) and "ro" in mode[0].split(",")
        found.append(Mount(kind, source, target, read_only))
    return found


def mount_of(svc: dict[str, Any], host_dir: Path) -> Mount:
    """The bind mount of host_dir in svc (compose resolves sources to absolute paths)."""
    matches = [m for m in mounts(svc) if m.kind == "bind" and Path(m.source) == host_dir]
    assert len(matches) == 1, f"expected one bind mount of {host_dir}: {mounts(svc)}"
    return matches[0]


def published(svc: dict[str, Any]) -> list[tuple[int | None, int]]:
    """(host port, container port) pairs; compose prints ports as dicts or as strings."""
    pairs: list[tuple[int | None, int]] = []
    for port in svc.get("ports", []):
        if isinstance(port, dict):
            host = port.get("published")
            pairs.append((int(host) if host is not None else None, int(port["target"])))
            continue
        parts = str(port).split("/")[0].split(":")
        host_port = parts[-2] if len(parts) >= 2 else ""
        pairs.append((int(host_port) if host_port else None, int(parts[-1])))
    return pairs


def port_of(address: str) -> int:
    """The port of host:port."""
    return int(address.rsplit(":", 1)[1])


def host_of(address: str) -> str:
    return address.rsplit(":", 1)[0]


def command_words(svc: dict[str, Any]) -> list[str]:
    command = svc.get("command", [])
    return shlex.split(command) if isinstance(command, str) else [str(w) for w in command]


# ---- Dockerfile -----------------------------------------------------------------------------


@dataclass
class Stage:
    name: str
    parent: str
    instructions: list[tuple[str, str]] = field(default_factory=list)


def dockerfile_instructions(text: str) -> list[tuple[str, str]]:
    """(KEYWORD, arguments) per instruction: comments dropped, continuation lines joined."""
    instructions = []
    current = ""
    for raw in text.splitlines():
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        if line.endswith("\\"):
            current += line[:-1].rstrip() + " "
            continue
        keyword, _, arguments = (current + line).partition(" ")
        instructions.append((keyword.upper(), arguments.strip()))
        current = ""
    return instructions


def dockerfile_stages(text: str) -> dict[str, Stage]:
    """Stages by name (or index), in file order."""
    stages: dict[str, Stage] = {}
    current: Stage | None = None
    for keyword, arguments in dockerfile_instructions(text):
        if keyword == "FROM":
            words = [w for w in arguments.split() if not w.startswith("--")]
            name = words[2] if len(words) == 3 and words[1].lower() == "as" else str(len(stages))
            current = stages[name] = Stage(name=name, parent=words[0])
        elif current is not None:
            current.instructions.append((keyword, arguments))
    return stages


@pytest.fixture(scope="module")
def stages() -> dict[str, Stage]:
    return dockerfile_stages(DOCKERFILE.read_text())


def lineage(stages: dict[str, Stage], name: str) -> list[Stage]:
    """The stage and the stages it is built FROM, oldest first."""
    assert name in stages, f"no stage {name!r} in the Dockerfile: {sorted(stages)}"
    chain = [stages[name]]
    while chain[0].parent in stages:
        chain.insert(0, stages[chain[0].parent])
    return chain


def instructions(stages: dict[str, Stage], name: str, keyword: str) -> list[str]:
    """Arguments of every `keyword` instruction a stage runs, inherited ones first."""
    return [
        args for stage in lineage(stages, name) for kw, args in stage.instructions if kw == keyword
    ]


def stage_env(stages: dict[str, Stage], name: str) -> dict[str, str]:
    env: dict[str, str] = {}
    for arguments in instructions(stages, name, "ENV"):
        words = shlex.split(arguments)
        if "=" not in words[0]:  # legacy `ENV KEY value`
            env[words[0]] = " ".join(words[1:])
            continue
        env.update(word.split("=", 1) for word in words)
    return env


def exec_or_shell(arguments: str) -> list[str]:
    """The words of a CMD/HEALTHCHECK command in exec (JSON) or shell form."""
    if arguments.startswith("["):
        return json.loads(arguments)
    return ["/bin/sh", "-c", arguments]


def app_stage(compose: dict[str, Any], stages: dict[str, Stage]) -> str:
    """The stage the app service runs: its build target, else the Dockerfile's last stage."""
    build = service(compose, "app").get("build", {})
    return build.get("target") or list(stages)[-1]


def app_environment(compose: dict[str, Any], stages: dict[str, Stage]) -> dict[str, str]:
    """The app container's environment: the image's ENV, then compose's on top."""
    return {**stage_env(stages, app_stage(compose, stages)), **environment(service(compose, "app"))}


def app_bind(compose: dict[str, Any], stages: dict[str, Stage]) -> str:
    return app_environment(compose, stages).get("BIND", "")


# ---- the tests ------------------------------------------------------------------------------


def test_compose_config_is_valid(compose_run: subprocess.CompletedProcess[str]) -> None:
    """A compose file docker-compose rejects stops the whole stack from starting."""
    assert compose_run.returncode == 0, f"docker-compose config failed:\n{compose_run.stderr}"
    assert set(yaml.safe_load(compose_run.stdout)["services"]) >= {"app", "nginx", "prometheus"}


def test_mounted_host_paths_exist(compose: dict[str, Any]) -> None:
    """Docker creates a missing bind source as an empty root-owned folder, silently."""
    for name, svc in compose["services"].items():
        for mount in mounts(svc):
            if mount.kind != "bind":
                continue
            source = Path(mount.source)
            assert source.is_relative_to(ROOT), f"{name} mounts {source}, outside the repo"
            assert source.exists(), f"{name} mounts {source}, which does not exist"
    for build in (svc.get("build") for svc in compose["services"].values()):
        if build:
            assert (Path(build["context"]) / build.get("dockerfile", "Dockerfile")).is_file()


def test_bind_mounts_are_read_only(compose: dict[str, Any]) -> None:
    """Configs and your binary/ are inputs no container may rewrite; the app writes versions
    into its own named volume."""
    for name, svc in compose["services"].items():
        for mount in mounts(svc):
            if mount.kind == "bind":
                assert mount.read_only, f"{name} mounts {mount.source} read-write"
    store = [m for m in mounts(service(compose, "app")) if m.kind == "volume"]
    assert [(m.target, m.read_only) for m in store] == [("/srv/store", False)]


def test_app_gets_its_secrets_from_files(compose: dict[str, Any]) -> None:
    """Key and token reach the app as files (compose secrets), never in the compose file."""
    env = service(compose, "app")["environment"]
    assert env["MODEL_SIGNING_KEY_FILE"] == "/run/secrets/signing_key"
    assert env["ADMIN_TOKEN_FILE"] == "/run/secrets/admin_token"
    assert "MODEL_SIGNING_KEY" not in env and "ADMIN_TOKEN" not in env


def test_secrets_are_the_copies_the_app_can_read(compose: dict[str, Any]) -> None:
    """The app runs as uid 10001 and compose mounts a secret's file as it is: `make run`'s
    mode-600 originals would be unreadable ("Permission denied"). make compose-up writes
    copies owned by the app's uid (deploy/compose.py); the compose file must point there."""
    secrets = compose.get("secrets", {})
    assert set(secrets) == {"signing_key", "admin_token", "tls_cert", "tls_key"}, secrets
    for name, secret in secrets.items():
        assert Path(secret["file"]).parent == compose_up.SECRETS, f"{name}: {secret['file']}"


def test_nginx_serves_tls_with_the_certificate_from_secrets(compose: dict[str, Any]) -> None:
    nginx = service(compose, "nginx")
    env = environment(nginx)
    assert {s["source"] if isinstance(s, dict) else s for s in nginx["secrets"]} == {
        "tls_cert",
        "tls_key",
    }
    assert env["TLS_CERT_FILE"] == "/run/secrets/tls_cert"
    assert env["TLS_KEY_FILE"] == "/run/secrets/tls_key"
    tls = port_of(env["TLS_LISTEN"])
    assert (8443, tls) in published(nginx), "the TLS listener is published (COMPOSE_TLS_PORT)"


def test_published_ports_are_loopback_by_default(compose: dict[str, Any]) -> None:
    """Nothing is reachable from the network unless COMPOSE_HOST says so."""
    for name, svc in compose["services"].items():
        for port in svc.get("ports", []):
            host_ip = port.get("host_ip") if isinstance(port, dict) else str(port).split(":")[0]
            assert host_ip == "127.0.0.1", f"{name} publishes {port} beyond loopback"


def test_every_base_image_has_a_stand_in() -> None:
    """Without a registry, make compose-up builds each base image from Debian packages."""
    names = compose_up.base_images()
    assert names, "no base image found in the Dockerfile and docker-compose.yml"
    for name in names:
        assert "$" not in name, f"unresolved base image {name}"
        assert compose_up.stand_in_recipe(name).is_file()


def test_nginx_command_renders_with_render_sh(compose: dict[str, Any]) -> None:
    """The container must render the same templates `make run` and the tests use."""
    nginx = service(compose, "nginx")
    templates = mount_of(nginx, NGINX_DIR).target
    words = command_words(nginx)
    if words[:2] in (["/bin/sh", "-c"], ["sh", "-c"]):
        words = shlex.split(words[2])
    render = f"{templates.rstrip('/')}/render.sh"
    assert render in words, f"the nginx command does not run {render}: {words}"
    out_dir = words[words.index(render) + 1]
    assert "nginx" in words and "-c" in words, f"the nginx command does not start nginx: {words}"
    config = words[words.index("-c", words.index("nginx")) + 1]
    assert Path(config) == Path(out_dir) / "nginx.conf", "nginx must load the rendered config"
    assert "daemon off;" in words, "nginx must stay in the foreground as the container's process"


def test_nginx_env_is_what_render_sh_substitutes(compose: dict[str, Any]) -> None:
    """render.sh substitutes a fixed list: any other variable is silently ignored."""
    match = re.search(r"^vars='([^']*)'", RENDER_SH.read_text(), flags=re.MULTILINE)
    assert match, "no vars='...' line in deploy/nginx/render.sh"
    substituted = set(re.findall(r"\$\{(\w+)\}", match.group(1)))
    env = environment(service(compose, "nginx"))
    assert set(env) <= substituted, f"render.sh ignores {sorted(set(env) - substituted)}"
    assert set(env) >= NGINX_REQUIRED_ENV, f"unset: {sorted(NGINX_REQUIRED_ENV - set(env))}"
    for listener in ("NGINX_LISTEN", "METRICS_LISTEN"):
        assert not host_of(env[listener]).startswith("127."), f"{listener} unreachable: loopback"


def test_upstream_is_the_app_bind(compose: dict[str, Any], stages: dict[str, Stage]) -> None:
    """nginx proxies to HAProxy (UPSTREAM), which finds gunicorn's BIND on every app replica:
    a port that differs on one side is a 503 for everything."""
    upstream = environment(service(compose, "nginx"))["UPSTREAM"]
    assert host_of(upstream) == "lb", f"UPSTREAM {upstream} is not the lb service"
    assert port_of(upstream) == port_of(haproxy_config.COMPOSE_LISTEN)
    replicas = haproxy_config.COMPOSE_REPLICAS
    assert host_of(replicas) == "app", f"HAProxy's servers {replicas} are not the app service"
    image_bind = stage_env(stages, app_stage(compose, stages)).get("BIND")
    assert image_bind, "the app image sets no BIND: gunicorn would listen on a unix socket"
    assert port_of(replicas) == port_of(image_bind), f"HAProxy's {replicas} != BIND {image_bind}"
    bind = app_bind(compose, stages)
    assert port_of(bind) == port_of(image_bind), f"compose BIND {bind} != image {image_bind}"
    assert host_of(bind) == "0.0.0.0", f"BIND {bind} is not reachable from the lb container"
    assert str(port_of(bind)) in map(str, service(compose, "app").get("expose", []))
    exposed = set(map(str, service(compose, "lb").get("expose", [])))
    listeners = (haproxy_config.COMPOSE_LISTEN, haproxy_config.COMPOSE_METRICS_LISTEN)
    assert {str(port_of(address)) for address in listeners} <= exposed


def test_lb_runs_the_committed_haproxy_config(compose: dict[str, Any]) -> None:
    """compose.cfg is generated from the template `make fleet` runs, is current, is where the
    lb command reads it, and HAProxy (Debian's, as the stand-in image) accepts it."""
    committed = haproxy_config.COMPOSE_CONFIG.read_text()
    assert committed == haproxy_config.compose(), "run `python -m deploy.haproxy_config`"
    lb = service(compose, "lb")
    mount = mount_of(lb, haproxy_config.COMPOSE_CONFIG.parent)
    assert mount.read_only
    words = command_words(lb)
    assert Path(words[words.index("-f") + 1]) == Path(mount.target) / "compose.cfg", words
    check = subprocess.run(
        ["haproxy", "-c", "-f", str(haproxy_config.COMPOSE_CONFIG)],
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert check.returncode == 0, check.stdout + check.stderr
    # Both backends: predictions are retried on another replica, admin calls never.
    assert committed.count(f"server-template app 1-{haproxy_config.COMPOSE_MAX_REPLICAS} ") == 2
    assert "resolvers engine" in committed and "parse-resolv-conf" in committed


def test_app_scales_on_one_store(compose: dict[str, Any], stages: dict[str, Stage]) -> None:
    """`--scale app=N` needs an app with no fixed name and no host port; its replicas share
    the store's named volume, follow its ACTIVE pointer, and drain before they stop."""
    app = service(compose, "app")
    assert "container_name" not in app, "a fixed container name cannot be scaled"
    assert not published(app), "a published host port cannot be scaled"
    env = app_environment(compose, stages)
    [store] = [m for m in mounts(app) if m.target == env["STORE_DIR"]]
    assert store.kind == "volume" and not store.read_only, store
    assert store.source in compose.get("volumes", {}), f"{store.source} is not a named volume"
    assert float(env.get("STORE_POLL_S", Settings.store_poll_s)) > 0, "replicas would not follow"
    grace = float(str(app.get("stop_grace_period", "10s")).rstrip("s"))
    drain = float(env.get("SHUTDOWN_DRAIN_S", "0"))
    assert drain >= 3, "HAProxy (down after two 1 s probes) would still send it requests"
    assert drain + int(conf_value("graceful_timeout")) < grace, (drain, grace)


def test_prometheus_scrapes_every_replica_and_the_lb(
    compose: dict[str, Any], stages: dict[str, Stage]
) -> None:
    """Each replica's metrics are its own (its workers' aggregate): Prometheus finds every app
    container by DNS at gunicorn's port, and scrapes HAProxy's exporter."""
    config = yaml.safe_load((PROMETHEUS_DIR / "prometheus.yml").read_text())
    jobs = {job["job_name"]: job for job in config["scrape_configs"]}
    assert set(jobs) == {monitor.MODEL_JOB, "load-balancer"}, sorted(jobs)
    [discovery] = jobs[monitor.MODEL_JOB]["dns_sd_configs"]
    assert discovery["names"] == ["app"] and discovery["type"] == "A", discovery
    assert discovery["port"] == port_of(app_bind(compose, stages))
    [static] = jobs["load-balancer"]["static_configs"]
    assert static["targets"] == [f"lb:{port_of(haproxy_config.COMPOSE_METRICS_LISTEN)}"]


def test_prometheus_loads_the_repo_config(compose: dict[str, Any]) -> None:
    """alerts.yml resolves relative to prometheus.yml, so the folder is mounted as a whole."""
    prometheus = service(compose, "prometheus")
    mount = mount_of(prometheus, PROMETHEUS_DIR)
    flags = dict(w.split("=", 1) for w in command_words(prometheus) if "=" in w)
    config = flags.get("--config.file", "")
    assert Path(config) == Path(mount.target) / "prometheus.yml", f"--config.file={config}"
    rules = yaml.safe_load((PROMETHEUS_DIR / "prometheus.yml").read_text())["rule_files"]
    assert all((PROMETHEUS_DIR / rule).is_file() for rule in rules), rules


def test_only_nginx_publishes_the_public_port(
    compose: dict[str, Any], stages: dict[str, Stage]
) -> None:
    """gunicorn and /metrics must only be reachable through nginx's public rules."""
    env = environment(service(compose, "nginx"))
    public = port_of(env["NGINX_LISTEN"])
    private = {port_of(app_bind(compose, stages)), port_of(env["METRICS_LISTEN"])}
    private |= {port_of(haproxy_config.COMPOSE_METRICS_LISTEN)}
    publishers = set()
    for name, svc in compose["services"].items():
        for host_port, container_port in published(svc):
            assert host_port not in private, f"{name} publishes private port {host_port}"
            assert container_port not in private, f"{name} publishes private port {container_port}"
            if public in (host_port, container_port):
                publishers.add(name)
    assert publishers == {"nginx"}, f"public port {public} published by {sorted(publishers)}"
    assert (public, public) in published(service(compose, "nginx"))
    assert not published(service(compose, "app")), "the app must not be published"


def test_model_paths_agree(compose: dict[str, Any], stages: dict[str, Stage]) -> None:
    """The app seeds its store from MODEL_PATH (the mounted binary/) and serves versions from
    STORE_DIR; nginx streams downloads from MODEL_DIR: the same volume, at the same path."""
    app_env = app_environment(compose, stages)
    app_mount = mount_of(service(compose, "app"), BINARY_DIR)
    assert Path(app_env["MODEL_PATH"]).parent == Path(app_mount.target), app_env["MODEL_PATH"]
    nginx = service(compose, "nginx")
    store = {m.target: m.source for m in mounts(service(compose, "app")) if m.kind == "volume"}
    served = {m.target: m.source for m in mounts(nginx) if m.kind == "volume"}
    assert environment(nginx)["MODEL_DIR"] == app_env["STORE_DIR"]
    assert served[app_env["STORE_DIR"]] == store[app_env["STORE_DIR"]]
    prefix = app_env.get("DOWNLOAD_ACCEL_PREFIX", "")
    assert prefix, "without DOWNLOAD_ACCEL_PREFIX every download holds a gunicorn worker"
    public_conf = (NGINX_DIR / "public.conf").read_text()
    assert re.search(rf"location {re.escape(prefix)} \{{\s*internal;", public_conf), prefix


def test_body_limit_agrees(compose: dict[str, Any], stages: dict[str, Stage]) -> None:
    """With different limits, nginx and the app disagree on which bodies get a 413."""
    app_env = app_environment(compose, stages)
    nginx_env = environment(service(compose, "nginx"))
    app_limit = app_env.get("MAX_BODY_BYTES", DEFAULT_MAX_BODY_BYTES)
    assert nginx_env.get("MAX_BODY_BYTES", DEFAULT_MAX_BODY_BYTES) == app_limit


def test_inflight_cap_is_four_per_worker(compose: dict[str, Any], stages: dict[str, Stage]) -> None:
    """One nginx fronts every replica: by default (one replica) its cap is that replica's
    workers' share, and make compose-up scales it with --replicas."""
    workers = int(app_environment(compose, stages)["WEB_CONCURRENCY"])
    cap = int(environment(service(compose, "nginx"))["MAX_INFLIGHT_PREDICTIONS"])
    assert cap == INFLIGHT_PER_WORKER * workers == compose_up.inflight_cap(1)
    assert compose_up.inflight_cap(3) == 3 * cap


def test_the_image_is_labelled_from_the_lock(
    compose: dict[str, Any], stages: dict[str, Stage]
) -> None:
    """make compose-up passes what the lock pins as build arguments; the image labels them
    and hands the lock's sha256 to the app (LOCK_SHA256, shown by GET /model)."""
    declared = {
        word.split("=")[0]
        for arguments in instructions(stages, app_stage(compose, stages), "ARG")
        for word in shlex.split(arguments)
    }
    passed = set(service(compose, "app")["build"]["args"])
    facts = compose_up.image_facts()
    assert set(facts) == passed <= declared
    lock = ROOT / "requirements" / "runtime.txt"
    assert facts["LOCK_SHA256"] == hashlib.sha256(lock.read_bytes()).hexdigest()
    assert f"scikit-learn=={facts['SKLEARN_VERSION']} " in lock.read_text()
    labels = " ".join(instructions(stages, app_stage(compose, stages), "LABEL"))
    for argument in passed:
        assert f"${{{argument}}}" in labels, argument
    assert stage_env(stages, app_stage(compose, stages))["LOCK_SHA256"] == "${LOCK_SHA256}"


def test_app_image_runs_gunicorn_with_the_repo_config(
    compose: dict[str, Any], stages: dict[str, Stage]
) -> None:
    """The image must serve with deploy/gunicorn.conf.py, the config the tests exercise."""
    stage = app_stage(compose, stages)
    commands = instructions(stages, stage, "CMD")
    assert commands, f"stage {stage} has no CMD"
    words = exec_or_shell(commands[-1])
    assert words[0] == "gunicorn", f"CMD {words}"
    assert words[words.index("-c") + 1] == GUNICORN_CONF, f"CMD {words}"
    assert words[-1] == "service.wsgi:app", f"CMD {words}"
    assert (ROOT / GUNICORN_CONF).is_file()
    copied = [args.split()[0] for args in instructions(stages, stage, "COPY")]
    assert {"service/", "deploy/"} <= {c.rstrip("/") + "/" for c in copied}, copied
    env = stage_env(stages, stage)
    assert env.get("PROMETHEUS_MULTIPROC_DIR"), "metrics storage must be set before Python starts"
    assert env.get("OMP_NUM_THREADS") == env.get("OPENBLAS_NUM_THREADS") == "1", env


def test_app_runs_as_non_root(compose: dict[str, Any], stages: dict[str, Stage]) -> None:
    """A process that unpickles a file runs with as little privilege as possible."""
    users = instructions(stages, app_stage(compose, stages), "USER")
    assert users, "the app image sets no USER: it would run as root"
    user = service(compose, "app").get("user") or users[-1]
    name = str(user).split(":")[0]
    assert name not in ("root", "0"), f"the app runs as {user}"


def test_healthcheck_probes_readiness(compose: dict[str, Any], stages: dict[str, Stage]) -> None:
    """lb waits for a healthy app: the probe must be /readyz and runnable in a slim image."""
    app = service(compose, "app")
    if "healthcheck" in app:  # compose overrides the image's HEALTHCHECK
        check = app["healthcheck"]
        assert not check.get("disable"), "the app's healthcheck is disabled"
        probe = " ".join(map(str, check["test"]))
    else:
        checks = instructions(stages, app_stage(compose, stages), "HEALTHCHECK")
        assert checks, "the app image has no HEALTHCHECK"
        _, _, command = checks[-1].partition("CMD ")
        probe = " ".join(exec_or_shell(command.strip()))
    assert "/readyz" in probe, f"healthcheck {probe!r} is not the readiness probe"
    assert f":{port_of(app_bind(compose, stages))}/" in probe, f"probe {probe!r} misses BIND"
    assert not re.search(r"\b(curl|wget)\b", probe), "python:*-slim has neither curl nor wget"
    condition = service(compose, "lb").get("depends_on", {}).get("app", {}).get("condition")
    assert condition == "service_healthy", f"lb depends on app with condition {condition}"


def test_test_service_runs_make_test(compose: dict[str, Any], stages: dict[str, Stage]) -> None:
    """`docker-compose run test` is the containerized `make test`, never started by `up`."""
    test = service(compose, "test")
    words = command_words(test)
    assert words == ["make", "test", "TEST_EXCLUDE=fleet k8s soak fuzz overload"], words
    assert "test" in test.get("profiles", []), "without a profile `up` would run the tests"
    target = test["build"].get("target")
    assert target in stages, f"build target {target!r} is not a Dockerfile stage"
    installs = " ".join(instructions(stages, target, "RUN"))
    missing = {pkg for pkg in TEST_IMAGE_PACKAGES if not re.search(rf"\s{pkg}(\s|$)", installs)}
    assert not missing, f"the test image does not install {sorted(missing)}"
    assert list(stages)[-1] == app_stage(compose, stages), "plain `docker build` must give the app"


def test_dockerignore_keeps_local_state_out() -> None:
    """The venv, git history and model artifacts have no place in the build context."""
    patterns = {
        line.strip()
        for line in DOCKERIGNORE.read_text().splitlines()
        if line.strip() and not line.startswith("#")
    }
    assert {".venv", ".git", ".run"} <= patterns, patterns
    assert patterns & {"binary", "binary/*", "binary/*.pkl"}, patterns
