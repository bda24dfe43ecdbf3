"""``make compose-up`` and ``make compose-down``: docker-compose.yml, run for real.

    python -m deploy.compose up [--port 8080]   # base images, build, up -d, wait for /readyz
    python -m deploy.compose down               # remove its containers, networks, volumes
    python -m deploy.compose base-images        # only make the base images present

Engine: Docker when its daemon answers, else podman (Debian's, installed through
deploy/apt-need.sh) driven by podman-compose (the venv's: pyproject's dev extras).
``CONTAINER_ENGINE=docker|podman`` forces one. ``up`` records the engine it used in
.run/compose/engine, so ``down`` removes the stack from the same one.

Base images: those the Dockerfile builds FROM and the compose services that build nothing
run (read from both files: ``python:3.11-slim-bookworm``, ``nginx:1.27-alpine``,
``haproxy:3.0-alpine``, ``prom/prometheus:v2.53.0``). One already present is used as it
is. A missing one is pulled when its registry answers; otherwise a stand-in is built from
Debian packages under that exact name (deploy/containers/<name>.Containerfile, FROM a
debootstrapped bookworm rootfs imported as model-serving-rootfs:bookworm). A stand-in
carries a hash of its recipe in a label: an edited Containerfile rebuilds it, nothing else
does, so a second run with the images present takes seconds. ``BASE_IMAGES=pull|local``
forces either way.

Machine facts are detected, never assumed: podman's containers.conf
(deploy/containers/containers.conf.in, rendered into .run/compose/ and used through
CONTAINERS_CONF, nothing under /etc is changed) sets the hard limits podman may not raise
and runc on hybrid cgroups; where the host's pip trusts a CA bundle of its own (HTTPS
re-signed by a local proxy), podman's builds get it as a build-time volume (pip reads
/etc/xdg/pip/pip.conf), never in an image layer. Images are built in Docker format: OCI
images have no HEALTHCHECK. Healthchecks need systemd's timers under podman, which a
machine without systemd lacks, so readiness is polled here: GET /readyz through nginx on
the published port, for either engine.

Python rather than sh: deadlines, parsing pip's configuration and the compose file,
hashing recipes and one-line errors with the logs' tail are short here and long in sh;
and it is the same click CLI and error style as deploy/run.py and deploy/monitor.py.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import resource
import shlex
import shutil
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import click
import yaml

from deploy import haproxy_config
from deploy.processes import holder_of, port_free
from deploy.run import self_signed
from deploy.stack import INFLIGHT_PER_WORKER, RUNTIME_LOCK

ROOT = Path(__file__).resolve().parents[1]
HERE = ROOT / "deploy" / "containers"
COMPOSE_FILE = ROOT / "docker-compose.yml"
DOCKERFILE = ROOT / "Dockerfile"
RUN_DIR = ROOT / ".run"
STATE = RUN_DIR / "compose"  # rendered containers.conf, secrets' copies, build logs
SECRETS = STATE / "secrets"  # docker-compose.yml's secrets are these files
ENGINE_FILE = STATE / "engine"  # the engine `up` used, for `down`
COMPOSE_WORKERS = 2  # the app's WEB_CONCURRENCY in docker-compose.yml, unless set

# The stand-ins' Debian release: the one the Dockerfile pins (python:3.11-slim-bookworm).
SUITE = "bookworm"
ROOTFS_IMAGE = f"model-serving-rootfs:{SUITE}"
RECIPE_LABEL = "org.model-serving.stand-in"
# Debian release names, to tell Debian's archive from third-party entries in apt's sources.
DEBIAN_SUITES = {"buster", "bullseye", "bookworm", "trixie", "forky", "sid", "stable", "testing"}
DEFAULT_MIRROR = "http://deb.debian.org/debian"
# What podman gives a root container when nothing says otherwise (libpod's RLimitDefaultValue).
PODMAN_RLIMIT = 1048576
# Where Debian (and Fedora) keep podman's helpers, netavark and aardvark-dns: not on PATH.
PODMAN_HELPERS = ("/usr/lib/podman", "/usr/libexec/podman")


class Fail(Exception):
    """One line (or a line and the logs' tail) for the console, then exit 1."""


def say(message: str) -> None:
    click.echo(message, err=True)


def tail(text: str, lines: int = 25) -> str:
    return "\n".join(text.rstrip().splitlines()[-lines:])


def run_logged(
    command: Sequence[str], log: Path, what: str, env: dict[str, str] | None = None
) -> None:
    """Run a chatty command with its output appended to log; on failure, fail with its tail."""
    log.parent.mkdir(parents=True, exist_ok=True)
    with log.open("a") as out:
        out.write(f"\n$ {shlex.join(command)}\n")
        out.flush()
        done = subprocess.run(command, stdout=out, stderr=subprocess.STDOUT, env=env, check=False)
    if done.returncode != 0:
        end = tail(log.read_text())
        raise Fail(f"{what} failed (exit {done.returncode}); the end of {rel(log)}:\n{end}")


def rel(path: Path) -> str:
    return str(path.relative_to(ROOT)) if path.is_relative_to(ROOT) else str(path)


# ---- the engine -----------------------------------------------------------------------------


@dataclass
class Engine:
    name: str  # "docker" or "podman": its command too
    compose: list[str]  # the compose command, project and file included
    env: dict[str, str] = field(default_factory=lambda: dict(os.environ))

    def run(self, *args: str, check: bool = True, timeout: float | None = 120) -> str:
        done = subprocess.run(
            [self.name, *args], env=self.env, capture_output=True, text=True, timeout=timeout
        )
        if check and done.returncode != 0:
            raise Fail(f"{self.name} {' '.join(args[:2])} failed: {done.stderr.strip()}")
        return done.stdout

    def image(self, name: str) -> dict[str, object] | None:
        """The image's inspect record, or None when it is not here."""
        done = subprocess.run(
            [self.name, "image", "inspect", name], env=self.env, capture_output=True, text=True
        )
        if done.returncode != 0:
            return None
        found = json.loads(done.stdout or "[]")
        return found[0] if found else None

    def containers(self, project: str) -> list[str]:
        """Ids of the project's containers, running or not (both composes set this label)."""
        listing = self.run("ps", "-aq", "--filter", f"label=com.docker.compose.project={project}")
        return listing.split()


def docker_answers() -> bool:
    if shutil.which("docker") is None:
        return False
    try:
        info = subprocess.run(["docker", "info"], capture_output=True, timeout=20, check=False)
    except subprocess.TimeoutExpired:
        return False
    return info.returncode == 0


def docker_engine(project: str) -> Engine:
    plugin = subprocess.run(["docker", "compose", "version"], capture_output=True, check=False)
    if plugin.returncode == 0:
        compose = ["docker", "compose"]
    elif shutil.which("docker-compose"):
        compose = ["docker-compose"]
    else:
        raise Fail("Docker answers but has no compose: install docker-compose (apt) or the plugin")
    return Engine("docker", [*compose, "-p", project, "-f", str(COMPOSE_FILE)])


def need(tools: Sequence[str]) -> None:
    """deploy/apt-need.sh: install the Debian packages whose commands are missing (as root)."""
    if not tools:
        return
    # netavark and aardvark-dns are podman's helpers, not on PATH: look where podman does.
    helpers = os.pathsep.join(PODMAN_HELPERS)
    env = {**os.environ, "PATH": f"{os.environ.get('PATH', '')}{os.pathsep}{helpers}"}
    if subprocess.run(["sh", str(ROOT / "deploy/apt-need.sh"), *tools], env=env).returncode:
        raise Fail(f"missing Debian packages for {' '.join(tools)}")


def podman_engine(project: str, tools: Sequence[str]) -> Engine:
    need(tools)
    if shutil.which("podman") is None:
        raise Fail("no Docker daemon answers and podman is not installed")
    compose = shutil.which("podman-compose", path=str(Path(sys.executable).parent))
    compose = compose or shutil.which("podman-compose")
    if compose is None:
        raise Fail("podman-compose is missing: make venv installs it (pyproject's dev extras)")
    version = subprocess.run(["podman", "--version"], capture_output=True, text=True).stdout
    say(f"engine: {version.strip()} with podman-compose (no Docker daemon answers)")
    conf = write_containers_conf()
    env = {
        **os.environ,
        "CONTAINERS_CONF": str(conf),
        # Docker format keeps the Dockerfile's HEALTHCHECK, which OCI images cannot hold.
        "BUILDAH_FORMAT": "docker",
    }
    if not Path("/run/systemd/system").is_dir():
        # podman runs healthchecks from systemd timers: without systemd it logs "unable to
        # get systemd connection to add healthchecks" for each container that has one. This
        # says not to try; readiness is polled instead (`podman healthcheck run` still works).
        env["DISABLE_HC_SYSTEMD"] = "true"
    # No pod: each service in its own network namespace on the project network, as Docker does.
    return Engine(
        "podman", [compose, "--in-pod", "false", "-p", project, "-f", str(COMPOSE_FILE)], env
    )


def choose_engine(wanted: str, project: str, podman_tools: Sequence[str]) -> Engine:
    if wanted in ("auto", "docker") and docker_answers():
        say("engine: docker (its daemon answers)")
        return docker_engine(project)
    if wanted == "docker":
        raise Fail("CONTAINER_ENGINE=docker, but no Docker daemon answers (docker info)")
    return podman_engine(project, podman_tools)


# ---- podman's containers.conf ---------------------------------------------------------------


def can_raise(limit: int) -> bool:
    """Whether this user may raise limit's hard value to podman's default (a child tries)."""
    probe = (
        "import resource, sys\n"
        f"try: resource.setrlimit({limit}, ({PODMAN_RLIMIT}, {PODMAN_RLIMIT}))\n"
        "except (ValueError, OSError): sys.exit(1)\n"
    )
    return subprocess.run([sys.executable, "-c", probe], check=False).returncode == 0


def cgroups() -> str:
    """unified (v2 only), hybrid (v1 controllers and a v2 hierarchy) or legacy (v1 only)."""
    types = {}
    for line in Path("/proc/self/mounts").read_text().splitlines():
        _, mount_point, fs_type, *_ = line.split()
        types[mount_point] = fs_type
    if types.get("/sys/fs/cgroup") == "cgroup2":
        return "unified"
    return "hybrid" if types.get("/sys/fs/cgroup/unified") == "cgroup2" else "legacy"


def write_containers_conf() -> Path:
    """Render deploy/containers/containers.conf.in for this machine (only if it changed)."""
    limits, said = [], []
    # podman lowers its own nproc hard limit to kernel.pid_max as it starts (containers/common's
    # default process limits), so no container of it can get more than that.
    pid_max = int(Path("/proc/sys/kernel/pid_max").read_text())
    for name, limit in (("nofile", resource.RLIMIT_NOFILE), ("nproc", resource.RLIMIT_NPROC)):
        hard = resource.getrlimit(limit)[1]
        if hard != resource.RLIM_INFINITY and hard < PODMAN_RLIMIT and not can_raise(limit):
            hard = min(hard, pid_max) if name == "nproc" else hard
            limits.append(f'"{name}={hard}:{hard}"')
    if limits:
        ulimits = f"default_ulimits = [{', '.join(limits)}]"
        said.append(f"ulimits {', '.join(v.strip(chr(34)) for v in limits)}")
    else:
        ulimits = "# default_ulimits: podman's defaults (this user may raise its hard limits)"
    layout = cgroups()
    if layout == "hybrid":
        runtime = 'runtime = "runc"'
        said.append("runtime runc (hybrid cgroups)")
    else:
        runtime = f"# runtime: podman's default ({layout} cgroups)"
    template = (HERE / "containers.conf.in").read_text()
    text = template.replace("@DEFAULT_ULIMITS@", ulimits).replace("@RUNTIME@", runtime)
    conf = STATE / "containers.conf"
    if not conf.exists() or conf.read_text() != text:
        STATE.mkdir(parents=True, exist_ok=True)
        conf.write_text(text)
    say(f"podman: {rel(conf)}: {'; '.join(said) or 'podman defaults'}")
    return conf


# ---- pip's trust for the image builds -------------------------------------------------------


def pip_options() -> dict[str, str]:
    """The host pip's effective options (`pip config list`: files, then PIP_* variables)."""
    listing = subprocess.run(
        [sys.executable, "-m", "pip", "config", "list"], capture_output=True, text=True
    ).stdout
    options = {}
    for line in listing.splitlines():
        key, _, value = line.partition("=")
        options[key.rpartition(".")[2]] = value.strip().strip("'\"")
    return options


def pip_build_dir() -> Path | None:
    """A folder holding pip.conf (+ the CA bundle) for the builds' RUN pip install, or None
    when the host's pip needs nothing special: no CA of its own, PyPI as the index."""
    options = pip_options()
    # Certificates added to the system's store (update-ca-certificates) are in its bundle.
    extra_cas = any(Path("/usr/local/share/ca-certificates").rglob("*.crt"))
    bundle = options.get("cert") or ("/etc/ssl/certs/ca-certificates.crt" if extra_cas else "")
    lines = []
    out = STATE / "pip"
    if bundle and Path(bundle).is_file():
        lines.append("cert = /etc/xdg/pip/ca-bundle.crt")
    for key in ("index-url", "extra-index-url", "trusted-host"):
        # Local indexes and wheel folders (file://, paths) do not exist inside a build.
        words = [w for w in options.get(key, "").split() if key == "trusted-host" or "://" in w]
        words = [w for w in words if not w.startswith("file:")]
        if words:
            lines.append(f"{key} = {' '.join(words)}")
    if not lines:
        shutil.rmtree(out, ignore_errors=True)
        return None
    out.mkdir(parents=True, exist_ok=True)
    if bundle and Path(bundle).is_file():
        shutil.copyfile(bundle, out / "ca-bundle.crt")
    (out / "pip.conf").write_text("[global]\n" + "\n".join(lines) + "\n")
    settings = ", ".join(line.split(" = ")[0] for line in lines)
    say(f"builds: pip gets this machine's {settings} ({bundle or 'pip config'}) at build time")
    return out


# ---- base images ----------------------------------------------------------------------------


def base_images() -> list[str]:
    """Images the Dockerfile builds FROM, then those the compose file runs unbuilt."""
    text = DOCKERFILE.read_text()
    args = dict(re.findall(r"^ARG\s+(\w+)=(\S+)", text, flags=re.MULTILINE))
    names, stages = [], set()
    pattern = r"^FROM\s+(?:--\S+\s+)*(\S+)(?:\s+AS\s+(\S+))?"
    for ref, stage in re.findall(pattern, text, flags=re.MULTILINE | re.IGNORECASE):
        name = re.sub(r"\$\{?(\w+)\}?", lambda m: args.get(m.group(1), m.group(0)), ref)
        if name not in stages and name not in names:
            names.append(name)
        stages.add(stage)
    services = yaml.safe_load(COMPOSE_FILE.read_text())["services"].values()
    for svc in services:
        if "build" not in svc and svc.get("image") and svc["image"] not in names:
            names.append(svc["image"])
    return names


def qualified(name: str) -> str:
    """docker.io's implicit prefixes made explicit (podman may have no search registries)."""
    first = name.split("/")[0]
    if "/" in name and ("." in first or ":" in first or first == "localhost"):
        return name
    return f"docker.io/{name}" if "/" in name else f"docker.io/library/{name}"


_answers: dict[str, bool] = {}


def registry_answers(name: str) -> bool:
    host = qualified(name).split("/")[0]
    host = "registry-1.docker.io" if host == "docker.io" else host
    if host not in _answers:
        try:
            urllib.request.urlopen(f"https://{host}/v2/", timeout=10).close()
            _answers[host] = True
        except urllib.error.HTTPError:  # 401: it answers, and wants a token
            _answers[host] = True
        except (urllib.error.URLError, OSError):
            _answers[host] = False
    return _answers[host]


def stand_in_recipe(name: str) -> Path:
    """deploy/containers/<repository>.Containerfile: python, nginx, haproxy, prometheus."""
    recipe = HERE / f"{name.rsplit(':', 1)[0].split('/')[-1]}.Containerfile"
    if not recipe.is_file():
        raise Fail(f"{name} is missing, its registry does not answer, and {rel(recipe)} is absent")
    return recipe


def recipe_hash(recipe: Path) -> str:
    return hashlib.sha256(f"{SUITE}\n".encode() + recipe.read_bytes()).hexdigest()[:16]


def labels(image: dict[str, object]) -> dict[str, str]:
    config = image.get("Config") or {}
    return dict(config.get("Labels") or {}) if isinstance(config, dict) else {}


def ensure_base_images(engine: Engine, mode: str, log: Path, tools: Sequence[str]) -> None:
    """Each base image present: kept; missing: pulled, or its stand-in built (tools: the
    Debian packages that takes, installed only then)."""
    for name in base_images():
        image = engine.image(name)
        if image is not None:
            built = labels(image).get(RECIPE_LABEL)
            if built is None:
                say(f"base image {name}: present")
                continue
            if built == recipe_hash(stand_in_recipe(name)):
                say(f"base image {name}: present (local stand-in, recipe {built[:8]})")
                continue
            say(f"base image {name}: its stand-in's recipe changed, rebuilding")
        elif mode == "pull" or (mode == "auto" and registry_answers(name)):
            say(f"base image {name}: pulling {qualified(name)}")
            engine.run("pull", qualified(name), timeout=900)
            if engine.name == "podman":
                engine.run("tag", qualified(name), name)
            continue
        else:
            say(f"base image {name}: no registry answers, building a stand-in from Debian packages")
        build_stand_in(engine, name, stand_in_recipe(name), log, tools)


def debian_mirror() -> str:
    """The Debian archive this machine's apt uses (DEBIAN_MIRROR overrides)."""
    if os.environ.get("DEBIAN_MIRROR"):
        return os.environ["DEBIAN_MIRROR"]
    entries: list[tuple[str, list[str]]] = []
    apt = Path("/etc/apt")
    for path in [apt / "sources.list", *sorted((apt / "sources.list.d").glob("*.list"))]:
        if path.is_file():
            for line in path.read_text().splitlines():
                words = re.sub(r"\[[^]]*\]", "", line.split("#")[0]).split()
                if len(words) >= 3 and words[0] == "deb":
                    entries.append((words[1], [words[2]]))
    for path in sorted((apt / "sources.list.d").glob("*.sources")):
        for stanza in re.split(r"\n\s*\n", path.read_text()):
            fields = dict(
                (key.strip().lower(), value.strip())
                for key, _, value in (
                    line.partition(":") for line in stanza.splitlines() if not line.startswith("#")
                )
                if value
            )
            if "deb" in fields.get("types", "").split() and fields.get("enabled") != "no":
                entries += [
                    (uri, fields.get("suites", "").split()) for uri in fields["uris"].split()
                ]
    for uri, suites in entries:
        if DEBIAN_SUITES & set(suites):
            return uri
    say(f"apt's sources name no Debian archive: using {DEFAULT_MIRROR}")
    return DEFAULT_MIRROR


def unmount_below(path: Path) -> None:
    """debootstrap mounts /proc and /sys in its target; an interrupted one leaves them."""
    mounts = [line.split()[1] for line in Path("/proc/self/mounts").read_text().splitlines()]
    for mount_point in sorted((m for m in mounts if Path(m).is_relative_to(path)), reverse=True):
        subprocess.run(["umount", "-l", mount_point], check=False)


def build_rootfs(engine: Engine, log: Path, tools: Sequence[str]) -> None:
    if engine.image(ROOTFS_IMAGE) is not None:
        return
    if os.geteuid() != 0:
        raise Fail("building the Debian rootfs needs root (debootstrap): run as root, or pull")
    need(tools)
    if shutil.which("debootstrap", path=f"{os.environ.get('PATH', '')}:/usr/sbin") is None:
        raise Fail("debootstrap is missing: sh deploy/apt-need.sh debootstrap:debootstrap")
    mirror = debian_mirror()
    say(f"rootfs {ROOTFS_IMAGE}: debootstrap --variant=minbase {SUITE} from {mirror} (~1 min)")
    started = time.monotonic()
    work = Path(tempfile.mkdtemp(prefix="model-serving-rootfs-", dir="/var/tmp"))
    try:
        target = work / "rootfs"
        run_logged(
            ["debootstrap", "--variant=minbase", SUITE, str(target), mirror], log, "debootstrap"
        )
        tarball = work / "rootfs.tar"
        run_logged(["tar", "-C", str(target), "-cf", str(tarball), "."], log, "tar of the rootfs")
        run_logged(
            [engine.name, "import", str(tarball), ROOTFS_IMAGE], log, "import", env=engine.env
        )
    finally:
        unmount_below(work)
        shutil.rmtree(work, ignore_errors=True)
    say(f"rootfs {ROOTFS_IMAGE}: imported in {time.monotonic() - started:.0f} s")


def build_stand_in(
    engine: Engine, name: str, recipe: Path, log: Path, tools: Sequence[str]
) -> None:
    build_rootfs(engine, log, tools)
    started = time.monotonic()
    command = [engine.name, "build"]
    if engine.name == "podman":
        command += ["--format", "docker"]
    command += [
        "--build-arg",
        f"ROOTFS={ROOTFS_IMAGE}",
        "--label",
        f"{RECIPE_LABEL}={recipe_hash(recipe)}",
        "-t",
        name,
        "-f",
        str(recipe),
        str(HERE),
    ]
    run_logged(command, log, f"building the stand-in {name}", env=engine.env)
    say(f"base image {name}: stand-in built in {time.monotonic() - started:.0f} s")


# ---- the stack ------------------------------------------------------------------------------


def default_project() -> str:
    """What docker-compose would call it: the folder's name, normalized (COMPOSE_PROJECT_NAME
    overrides)."""
    name = os.environ.get("COMPOSE_PROJECT_NAME") or ROOT.name
    return re.sub(r"[^-_a-z0-9]", "", name.lower()) or "model-serving"


def app_user() -> tuple[int, int]:
    """The runtime image's USER uid:gid (the Dockerfile's last USER, in numbers)."""
    users = re.findall(r"^USER\s+(\d+)(?::(\d+))?\s*$", DOCKERFILE.read_text(), re.MULTILINE)
    if not users:
        raise Fail("the Dockerfile's runtime stage has no numeric USER")
    uid, gid = users[-1]
    return int(uid), int(gid or uid)


def write_secrets(engine: Engine, sources: dict[str, Path]) -> None:
    """Copies of the key and token the app container (uid 10001) can read, whoever owns the
    originals (`make run` writes them mode 600 for you): compose bind-mounts a secret's file
    as it is, and neither docker-compose nor podman-compose applies a secret's uid or mode."""
    uid, gid = app_user()
    SECRETS.mkdir(parents=True, exist_ok=True)
    SECRETS.chmod(0o700)
    for name, source in sources.items():
        if not source.is_file():
            raise Fail(f"{source} is missing: make {source} creates it")
        target = SECRETS / name
        scratch = SECRETS / f".{name}.new"
        scratch.unlink(missing_ok=True)
        descriptor = os.open(scratch, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o400)
        with os.fdopen(descriptor, "wb") as out:
            out.write(source.read_bytes())
        if os.geteuid() == 0:
            os.chown(scratch, uid, gid)
        elif engine.name == "podman":  # rootless: the container's uid, as seen from here
            engine.run("unshare", "chown", f"{uid}:{gid}", str(scratch))
        else:  # Docker as a user: readable by all, inside a folder only you may enter
            scratch.chmod(0o444)
        os.replace(scratch, target)
    declared = yaml.safe_load(COMPOSE_FILE.read_text()).get("secrets", {})
    for secret in declared.values():
        if not (ROOT / secret["file"]).is_file():
            raise Fail(f"docker-compose.yml's secret {secret['file']} is not written here")


# A container restarted this often while we wait is crash-looping (podman restarts at once).
CRASH_LOOP = 3


def crash_looping(engine: Engine, project: str) -> str:
    """'NAME restarted N times', for the first container of the stack that keeps dying."""
    for container in engine.containers(project):
        about = "{{.Name}} {{.RestartCount}}"
        name, restarts = engine.run("inspect", "--format", about, container).split()
        if int(restarts) >= CRASH_LOOP:
            return f"{name.lstrip('/')} restarted {restarts} times"
    return ""


def wait_ready(url: str, timeout: float, engine: Engine, project: str) -> float:
    """Seconds until url answers 200; Fail with the last answer after timeout, or as soon
    as a container of the stack is crash-looping."""
    started = time.monotonic()
    last = "no answer"
    while True:
        if dying := crash_looping(engine, project):
            raise Fail(f"{dying} while {url} answered {last}")
        try:
            with urllib.request.urlopen(url, timeout=5) as answer:
                if answer.status == 200:
                    return time.monotonic() - started
                last = f"HTTP {answer.status}"
        except urllib.error.HTTPError as exc:
            last = f"HTTP {exc.code}"
        except (urllib.error.URLError, OSError) as exc:
            last = str(getattr(exc, "reason", exc))
        if time.monotonic() - started > timeout:
            raise Fail(f"{url} did not answer 200 within {timeout:.0f} s (last: {last})")
        time.sleep(1)


def logs_tail(engine: Engine, project: str, lines: int = 10) -> str:
    """The last lines each container of the stack logged (without this module's /readyz
    polls, which would fill nginx's), each cut to one screen line."""
    parts = []
    for container in engine.containers(project):
        about = "{{.Name}} {{.State.Status}} {{.RestartCount}}"
        name, state, restarts = engine.run("inspect", "--format", about, container).split()
        # Whole logs, cut here: podman 4.3's --tail garbles lines written in pieces.
        done = subprocess.run(
            [engine.name, "logs", container],
            env=engine.env,
            capture_output=True,
            text=True,
            check=False,
        )
        logged = [
            line if len(line) <= 240 else line[:237] + "..."
            for line in (done.stdout + done.stderr).splitlines()
            if "/readyz" not in line
        ][-lines:]
        header = f"--- {name.lstrip('/')}: {state}, restarted {restarts} times"
        parts.append("\n".join([header, *logged]))
    return "\n".join(parts) or "(no containers)"


def stale_services(engine: Engine, project: str) -> list[str]:
    """Containers of the stack running an older image than their image's name now gives.
    podman-compose recreates a container only when its compose config changed; docker
    compose also when its image did."""
    stale = []
    for container in engine.containers(project):
        found = engine.run("inspect", "--format", "{{.ImageName}} {{.Image}} {{.Name}}", container)
        image_name, image_id, name = found.split()
        current = engine.image(image_name)
        if current is not None and current.get("Id") != image_id:
            stale.append(name)
    return stale


def compose_services_to_build() -> list[str]:
    services = yaml.safe_load(COMPOSE_FILE.read_text())["services"]
    return [name for name, svc in services.items() if "build" in svc and not svc.get("profiles")]


@click.group()
def main() -> None:
    """The compose stack on Docker or podman (see deploy/compose.py)."""


ENGINE_OPTION = click.option(
    "--engine",
    envvar="CONTAINER_ENGINE",
    type=click.Choice(["auto", "docker", "podman"]),
    default="auto",
    show_default=True,
    help="Docker when its daemon answers, else podman.",
)
PROJECT_OPTION = click.option("--project", default=default_project, help="Compose project name.")
PODMAN_TOOLS_OPTION = click.option(
    "--podman-tools", default="", help="COMMAND:PACKAGE pairs podman needs (deploy/apt-need.sh)."
)
STAND_IN_TOOLS_OPTION = click.option(
    "--stand-in-tools", default="", help="COMMAND:PACKAGE pairs the stand-ins need."
)
BASE_IMAGES_OPTION = click.option(
    "--base-images",
    envvar="BASE_IMAGES",
    type=click.Choice(["auto", "pull", "local"]),
    default="auto",
    show_default=True,
    help="Missing base images: pull when the registry answers (auto), always, or never.",
)


@main.command("base-images")
@ENGINE_OPTION
@PROJECT_OPTION
@PODMAN_TOOLS_OPTION
@STAND_IN_TOOLS_OPTION
@BASE_IMAGES_OPTION
def base_images_command(
    engine: str, project: str, podman_tools: str, stand_in_tools: str, base_images: str
) -> None:
    """Make the base images present: pulled, or stand-ins built from Debian packages."""
    try:
        chosen = choose_engine(engine, project, podman_tools.split())
        ensure_base_images(chosen, base_images, STATE / "build.log", stand_in_tools.split())
    except Fail as exc:
        sys.exit(f"error: {exc}")


@main.command()
@ENGINE_OPTION
@PROJECT_OPTION
@PODMAN_TOOLS_OPTION
@STAND_IN_TOOLS_OPTION
@BASE_IMAGES_OPTION
@click.option("--host", envvar="COMPOSE_HOST", default="127.0.0.1", show_default=True)
@click.option("--port", envvar="COMPOSE_PORT", default=8080, show_default=True, help="nginx.")
@click.option(
    "--prometheus-port", envvar="COMPOSE_PROMETHEUS_PORT", default=9090, show_default=True
)
@click.option(
    "--tls-port", envvar="COMPOSE_TLS_PORT", default=8443, show_default=True, help="nginx, TLS."
)
@click.option(
    "--tls-cert-file",
    envvar="COMPOSE_TLS_CERT",
    type=click.Path(path_type=Path, exists=True, dir_okay=False),
    help="With --tls-key-file: the certificate nginx serves (default: make run TLS=1's "
    "self-signed one, for localhost, in .run/tls/).",
)
@click.option(
    "--tls-key-file",
    envvar="COMPOSE_TLS_KEY",
    type=click.Path(path_type=Path, exists=True, dir_okay=False),
)
@click.option("--key-file", default=RUN_DIR / "signing-key", type=click.Path(path_type=Path))
@click.option("--token-file", default=RUN_DIR / "admin-token", type=click.Path(path_type=Path))
@click.option(
    "--replicas",
    envvar="COMPOSE_REPLICAS",
    default=1,
    show_default=True,
    type=click.IntRange(1, haproxy_config.COMPOSE_MAX_REPLICAS),
    help="App containers (--scale app=N), behind the lb service.",
)
@click.option("--timeout", envvar="COMPOSE_TIMEOUT", default=180.0, show_default=True)
def up(
    engine: str,
    project: str,
    podman_tools: str,
    stand_in_tools: str,
    base_images: str,
    host: str,
    port: int,
    prometheus_port: int,
    tls_port: int,
    tls_cert_file: Path | None,
    tls_key_file: Path | None,
    key_file: Path,
    token_file: Path,
    replicas: int,
    timeout: float,
) -> None:
    """Build the images, start the stack (up -d) and wait until /readyz answers via nginx."""
    started = time.monotonic()
    log = STATE / "build.log"
    try:
        chosen = choose_engine(engine, project, podman_tools.split())
        STATE.mkdir(parents=True, exist_ok=True)
        ENGINE_FILE.write_text(chosen.name + "\n")
        log.write_text("")
        ensure_base_images(chosen, base_images, log, stand_in_tools.split())
        if (tls_cert_file is None) != (tls_key_file is None):
            raise Fail("--tls-cert-file and --tls-key-file go together")
        if tls_cert_file is not None and tls_key_file is not None:
            cert, key = tls_cert_file, tls_key_file
        else:
            cert, key = self_signed(RUN_DIR / "tls")
        write_secrets(
            chosen,
            {
                "signing-key": key_file,
                "admin-token": token_file,
                "tls-cert": cert,
                "tls-key": key,
            },
        )
        if not chosen.containers(project):  # a running stack of ours holds them: up recreates it
            probe = "127.0.0.1" if host == "0.0.0.0" else host
            published = (
                ("COMPOSE_PORT", port),
                ("COMPOSE_TLS_PORT", tls_port),
                ("COMPOSE_PROMETHEUS_PORT", prometheus_port),
            )
            for variable, number in published:
                if not port_free(probe, number):
                    raise Fail(
                        f"port {probe}:{number} is in use by {holder_of(f':{number}')}: "
                        f"choose another, e.g. make compose-up {variable}={number + 1}"
                    )
        chosen.env.update(
            COMPOSE_HOST=host,
            COMPOSE_PORT=str(port),
            COMPOSE_TLS_PORT=str(tls_port),
            COMPOSE_PROMETHEUS_PORT=str(prometheus_port),
            COMPOSE_MAX_INFLIGHT=str(inflight_cap(replicas)),
            **image_facts(),
        )
        compose = building(chosen)
        services = compose_services_to_build()
        say(f"building {', '.join(services)} (log: {rel(log)})")
        build_started = time.monotonic()
        run_logged([*compose, "build", *services], log, "the build", env=chosen.env)
        say(f"built in {time.monotonic() - build_started:.0f} s; starting the stack")
        command = [*compose, "up", "-d", "--no-build", "--scale", f"app={replicas}"]
        if chosen.name == "podman" and (stale := stale_services(chosen, project)):
            say(f"recreating {', '.join(stale)}: the image changed")
            command.append("--force-recreate")
        run_logged(command, log, "compose up", env=chosen.env)
        url = f"http://{'127.0.0.1' if host == '0.0.0.0' else host}:{port}"
        try:
            ready = wait_ready(f"{url}/readyz", timeout, chosen, project)
        except Fail as exc:
            logs = logs_tail(chosen, project)
            # Stopped, not removed: no crash loop on the machine, and the logs stay readable.
            subprocess.run(
                [*compose, "stop"], env=chosen.env, capture_output=True, timeout=120, check=False
            )
            raise Fail(
                f"{exc}. The stack is stopped ({chosen.name} logs NAME shows more; "
                f"make compose-down removes it). The logs' tails:\n{logs}"
            ) from None
    except Fail as exc:
        sys.exit(f"error: {exc}")
    say(
        f"ready in {ready:.0f} s ({time.monotonic() - started:.0f} s in all): the API on {url} "
        f"(e.g. {url}/readyz), Prometheus on http://127.0.0.1:{prometheus_port}; "
        "make compose-down removes it"
    )


LABELLED = {
    "scikit-learn": "SKLEARN_VERSION",
    "pandas": "PANDAS_VERSION",
    "numpy": "NUMPY_VERSION",
    "sklearn-pandas": "SKLEARN_PANDAS_VERSION",
}
"""The packages whose versions a pickle depends on: the image's labels, by build argument."""


def image_facts(lock: Path = RUNTIME_LOCK) -> dict[str, str]:
    """The app image's build arguments: the lock's sha256 and its pins of :data:`LABELLED`."""
    data = lock.read_bytes()
    pins = dict(re.findall(r"^([A-Za-z0-9_.-]+)==(\S+)", data.decode(), re.M))
    facts = {"LOCK_SHA256": hashlib.sha256(data).hexdigest()}
    facts.update({argument: pins[package] for package, argument in LABELLED.items()})
    return facts


def inflight_cap(replicas: int) -> int:
    """nginx's cap on predictions in flight: the one nginx fronts every replica, so the
    cap is four per worker of all of them (deploy/nginx/limits.conf)."""
    workers = int(os.environ.get("WEB_CONCURRENCY", COMPOSE_WORKERS))
    return INFLIGHT_PER_WORKER * workers * replicas


def building(chosen: Engine) -> list[str]:
    """The compose command, with this machine's pip configuration for the builds."""
    compose = list(chosen.compose)
    pip_dir = pip_build_dir()
    if pip_dir is not None:
        if chosen.name == "podman":
            volume = shlex.join(["--volume", f"{pip_dir}:/etc/xdg/pip:ro"])
            compose[1:1] = ["--podman-build-args", volume]
        else:
            say("builds: docker build cannot mount it; pip may fail to verify PyPI's HTTPS")
    return compose


@main.command()
@ENGINE_OPTION
@PODMAN_TOOLS_OPTION
@STAND_IN_TOOLS_OPTION
def engine(engine: str, podman_tools: str, stand_in_tools: str) -> None:
    """Exit 0 when a container engine can run the stack here (installing podman's packages
    as root), else 3 with the reason: `make test` then leaves out the compose tests."""
    try:
        choose_engine(engine, default_project(), [*podman_tools.split(), *stand_in_tools.split()])
    except Fail as exc:
        say(f"no container engine here ({exc}): the compose tests do not run")
        sys.exit(3)


@main.command("test-image")
@ENGINE_OPTION
@PROJECT_OPTION
@PODMAN_TOOLS_OPTION
@STAND_IN_TOOLS_OPTION
@BASE_IMAGES_OPTION
def test_image(
    engine: str, project: str, podman_tools: str, stand_in_tools: str, base_images: str
) -> None:
    """`make test` inside the test image (compose's `test` service); exits with its status."""
    log = STATE / "build.log"
    try:
        chosen = choose_engine(engine, project, podman_tools.split())
        STATE.mkdir(parents=True, exist_ok=True)
        log.write_text("")
        ensure_base_images(chosen, base_images, log, stand_in_tools.split())
        compose = [*building(chosen), "--profile", "test"]
        say(f"building the test image (log: {rel(log)})")
        run_logged([*compose, "build", "test"], log, "the test image's build", env=chosen.env)
    except Fail as exc:
        sys.exit(f"error: {exc}")
    tested = subprocess.run(
        [*chosen.compose, "--profile", "test", "run", "--rm", "test"], env=chosen.env, check=False
    )
    sys.exit(tested.returncode)


def process_mentions(ids: Sequence[str]) -> list[str]:
    """Processes whose command line names one of these container ids (conmon does)."""
    found = []
    for proc in Path("/proc").glob("[0-9]*"):
        try:
            words = (proc / "cmdline").read_bytes().decode(errors="replace").split("\0")
        except OSError:
            continue
        if any(i in word for word in words for i in ids):
            found.append(f"pid {proc.name} ({words[0]})")
    return found


@main.command()
@PROJECT_OPTION
@click.option("--timeout", default=45, show_default=True, help="Seconds to wait for processes.")
def down(project: str, timeout: float) -> None:
    """Stop and remove the stack: its containers, networks and volumes; leave no process."""
    try:
        recorded = ENGINE_FILE.read_text().strip() if ENGINE_FILE.is_file() else ""
        if recorded == "docker" or (not recorded and docker_answers()):
            engine = docker_engine(project)
        elif shutil.which("podman"):
            engine = podman_engine(project, [])
        else:
            say("nothing to remove: neither Docker nor podman is here")
            return
        ids = engine.containers(project)
        label = f"label=com.docker.compose.project={project}"
        made = {
            kind: engine.run(kind, "ls", "-q", "--filter", label, check=False).split()
            for kind in ("network", "volume")
        }
        run_logged(
            [*engine.compose, "down", "-v", "--remove-orphans"],
            STATE / "down.log",
            "compose down",
            env=engine.env,
        )
        leftovers = engine.containers(project)
        if leftovers:
            engine.run("rm", "-f", *leftovers)
        for kind in ("volume", "network"):
            names = engine.run(kind, "ls", "-q", "--filter", label, check=False).split()
            if names:
                engine.run(kind, "rm", *names, check=False)
            if names := engine.run(kind, "ls", "-q", "--filter", label, check=False).split():
                raise Fail(f"{engine.name} {kind} rm left {', '.join(names)}")
        deadline = time.monotonic() + timeout
        while (alive := process_mentions(ids)) and time.monotonic() < deadline:
            time.sleep(0.5)
        shutil.rmtree(SECRETS, ignore_errors=True)
        ENGINE_FILE.unlink(missing_ok=True)
        if alive:
            raise Fail(f"processes of the removed containers remain: {', '.join(alive)}")
    except Fail as exc:
        sys.exit(f"error: {exc}")
    removed = [f"{len(ids)} containers"] + [
        f"{kind} {', '.join(names)}" for kind, names in made.items() if names
    ]
    say(f"removed {'; '.join(removed)} ({engine.name}); no process of theirs is left")


if __name__ == "__main__":
    main()
