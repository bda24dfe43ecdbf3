# gunicorn settings for the model server:
#   gunicorn -c deploy/gunicorn.conf.py service.wsgi:app
# What a deployment tunes is read from the environment (any other setting: GUNICORN_CMD_ARGS,
# e.g. "--worker-class sync --threads 1"); sections follow gunicorn's own order.
import gc
import os
import shutil
import signal
import threading
import time

# ---- environment every process needs before numpy or prometheus_client import ------------
# One BLAS/OpenMP thread per worker: N workers x N cores threads would oversubscribe the
# cores and make one-row predictions slower, not faster.
for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_var, "1")
# Normally set by the launcher before Python starts (prometheus_client picks its storage at
# import time); this file still runs before the app is imported, so the default is in time.
os.environ.setdefault("PROMETHEUS_MULTIPROC_DIR", os.path.abspath(".run/prometheus"))
_metrics_dir = os.environ["PROMETHEUS_MULTIPROC_DIR"]
# Start with an empty metrics folder: files of a previous run would add to this run's totals.
# gunicorn re-reads this file on HUP; the pid guard keeps that from wiping live workers' files.
if os.environ.get("_METRICS_DIR_OWNER") != str(os.getpid()):
    shutil.rmtree(_metrics_dir, ignore_errors=True)
    os.makedirs(_metrics_dir, exist_ok=True)
    os.environ["_METRICS_DIR_OWNER"] = str(os.getpid())

from gunicorn import util  # noqa: E402
from gunicorn.arbiter import Arbiter  # noqa: E402
from gunicorn.http import wsgi  # noqa: E402
from gunicorn.workers.base import Worker  # noqa: E402
from prometheus_client import Counter, multiprocess  # noqa: E402  (after the folder is set)

from service.http import gunicorn_json, gunicorn_response  # noqa: E402

# Requests gunicorn's parser refuses (a control character in a header, say) get the
# service's JSON error shape rather than gunicorn's HTML page.
util.write_error = gunicorn_json.write_error
# A response's head leaves in the same socket write as its body: a worker killed between
# two writes made nginx pass on a 200 head it could then neither finish nor retry (issue
# 17; the mechanism is in service/http/gunicorn_response.py). wsgi.create() looks the name up
# on each request, so the gthread worker builds this class.
wsgi.Response = gunicorn_response.OneWriteResponse

# Counted by the master, so it survives the workers it counts.
WORKER_EXITS = Counter(
    "gunicorn_worker_exits", "Workers that exited (crash, timeout or recycle).", registry=None
)

# ---- server socket -------------------------------------------------------------------------
# A unix socket next to nginx (make run, tests); the compose stack binds 0.0.0.0:8000.
bind = os.environ.get("BIND", "unix:.run/gunicorn.sock")
backlog = 2048
# As long as nginx allows (8 KB lines, many headers), so gunicorn never refuses what
# nginx passed with an error page of its own.
limit_request_line = 8190
limit_request_fields = 32768

# ---- worker processes ----------------------------------------------------------------------
# One worker per core: a prediction is CPU-bound and holds the GIL, so more processes than
# cores only add memory. gthread: a worker's threads take requests concurrently, and the
# ones that arrive while its pipeline is busy are scored together by the next call
# (service/serving/batching.py), so more threads mean larger batches. Measured on 2 cores, linear
# model, 1-row requests from 32 connections: 4 threads 385 req/s (p99 158 ms), 16 threads
# 678 req/s (p99 89 ms); sync workers cannot batch at all (make bench, "ablation").
workers = int(os.environ.get("WEB_CONCURRENCY", os.cpu_count() or 2))
worker_class = "gthread"
threads = int(os.environ.get("GUNICORN_THREADS", "16"))
# At most as many connections per worker as it has threads. nginx keeps a pool of upstream
# connections, and a worker that happened to accept most of them got most of the load while
# the other idled: B ran at 390-520 req/s one run in three, 690-750 otherwise. Capped, the
# pool splits evenly (requests per worker 2068/2092) and B holds 690-740 req/s.
worker_connections = threads
# A worker whose main loop is silent this long is killed and replaced. gthread workers
# heartbeat from their main loop even while a request thread is busy, so a slow prediction
# is bounded by the service's own PREDICT_TIMEOUT_S (25 s), below nginx's 35 s.
timeout = int(os.environ.get("GUNICORN_TIMEOUT", "30"))
graceful_timeout = int(os.environ.get("GUNICORN_GRACEFUL_TIMEOUT", "20"))
# No kept-alive connections: a gthread worker keeps idle ones only beyond its
# worker_connections - threads, which the cap above makes zero, so it closes each connection
# after its answer anyway (gunicorn warned "No keepalived connections can be handled" at
# every start). Saying so here makes it explicit; nginx connects per request over the unix
# socket, which costs microseconds against a prediction's milliseconds.
keepalive = 0
# Recycle workers now and then to bound slow leaks; jitter keeps them from restarting together.
max_requests = int(os.environ.get("GUNICORN_MAX_REQUESTS", "50000"))
max_requests_jitter = max_requests // 10

# ---- server mechanics ----------------------------------------------------------------------
# Load and check the model once in the master: a broken model stops the boot with the
# loader's message, and workers share the pipeline's pages copy-on-write.
preload_app = True
# Heartbeat files in memory rather than on a possibly slow disk.
worker_tmp_dir = "/dev/shm" if os.path.isdir("/dev/shm") else None

# gunicorn 27's control socket (gunicornc) is unused here; several servers on one host
# would otherwise share $HOME/.gunicorn/gunicorn.ctl.
control_socket_disable = True

# ---- logging ---------------------------------------------------------------------------------
accesslog = os.environ.get("GUNICORN_ACCESS_LOG", "-")
errorlog = "-"
loglevel = os.environ.get("LOG_LEVEL", "info").lower()
logger_class = "service.http.gunicorn_json.JsonAccessLogger"

# ---- process naming ------------------------------------------------------------------------
proc_name = "model-server"


# ---- server hooks --------------------------------------------------------------------------
def when_ready(server: Arbiter) -> None:
    """After preload, before the first fork: freeze the heap so workers keep sharing it.

    Without this, the first garbage collection in each worker writes to every object's
    header and copies the whole preloaded model into private memory (benoitc/gunicorn#1640).
    """
    from service.control.controller import forget_reloads

    forget_reloads(server.pid)  # a status left by an earlier master of the same pid
    drain_s = server.app.wsgi().extensions["runtime"].settings.shutdown_drain_s
    if drain_s > 0:
        _drain_before_stopping(server, drain_s)
    gc.collect()
    gc.freeze()


def _drain_before_stopping(server: Arbiter, seconds: float) -> None:
    """The first TERM marks the replica as draining (``/readyz`` fails, every request is
    still served) and stops gracefully ``seconds`` later, so a load balancer probing
    ``/readyz`` takes the replica out first; a second TERM stops at once."""
    from service.control.controller import start_draining

    graceful_stop = server.handle_term

    def handle_term() -> None:
        if server.draining_since is not None:
            graceful_stop()  # raises StopIteration: gunicorn's graceful stop
            return
        server.draining_since = time.monotonic()
        start_draining(server.pid)
        server.log.info("TERM: draining for %g s before the graceful stop", seconds)
        timer = threading.Timer(seconds, server.signal, (signal.SIGTERM, None))
        timer.daemon = True
        timer.start()

    server.draining_since = None
    server.handle_term = handle_term


def post_fork(server: Arbiter, worker: Worker) -> None:
    """Wire the worker to its master: model swaps go through the master (so every worker
    gets them), a worker whose prediction overran its deadline asks to be replaced, and
    the worker follows the store's ACTIVE pointer when replicas share the store."""
    from service.control.controller import drain_mark, hup_master
    from service.control.follower import Follower

    app = server.app.wsgi()
    control = app.extensions["control"]
    control.reload_via_master = hup_master(server.pid)
    control.master = server.pid
    app.extensions["runtime"].on_stuck = _retire_now
    app.extensions["runtime"].draining = drain_mark(server.pid)
    if control.settings.store_poll_s > 0:
        Follower(control, control.reload_via_master).start(control.settings.store_poll_s)


def _retire_now() -> None:
    """A stuck worker stops taking connections at once (TERM) and, once the answers it
    owes (504, 503s) are out, quits (QUIT) rather than lingering 2 s on kept-alive
    connections that nginx would keep sending predictions to."""
    os.kill(os.getpid(), signal.SIGTERM)
    threading.Timer(1.0, os.kill, (os.getpid(), signal.SIGQUIT)).start()


def on_reload(server: Arbiter) -> None:
    """HUP: load the store's active version into the preloaded app before new workers fork."""
    from service.control.controller import reload_in_master

    reload_in_master(server.app.wsgi().extensions["control"])
    gc.collect()
    gc.freeze()


def child_exit(server: Arbiter, worker: Worker) -> None:
    """A worker is gone: drop its live gauges from the scrape and count the exit."""
    multiprocess.mark_process_dead(worker.pid)
    WORKER_EXITS.inc()
