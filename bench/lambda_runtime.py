"""A local stand-in for the Lambda Runtime API, to time a function's cold start.

It serves a list of events to one process through the Runtime API's
/invocation/next and records, with time.perf_counter on this side:
- init: process spawn -> its first /invocation/next request;
- per event: event handed out -> /response (or /error) received;
- init CPU: the process's CPU time at its first poll, summed over its
  threads from /proc/<pid>/task/*/schedstat (nanoseconds, not ticks): on a
  busy machine wall time also counts waiting for a core, CPU time does not;
- peak RSS: the process's VmHWM from /proc just before it is stopped.

As a module: run_function(cmd, env, events) -> dict (used by
bench/lambda_compare.py). As a script, one cold run of one function:
  TIDEGATE_CONFIG="$(cat examples/gateway.toml)" python3 bench/lambda_runtime.py \
    target/lambda/tidegate-rollback/bootstrap \
    shared/tests/fixtures/events/eventbridge-alarm-configuration-change.json
Bounded: every wait has a timeout; the process is killed at the end.
"""

import json
import os
import subprocess
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

PREFIX = "/2018-06-01/runtime"


class _Session:
    def __init__(self, events):
        self.events = list(events)
        self.handed = []  # perf_counter when event i was handed out
        self.answered = []  # (perf_counter, status, body) per event
        self.first_poll = None
        self.init_cpu_ms = None
        self.pid = None
        self.init_error = None
        self.lock = threading.Lock()
        self.all_answered = threading.Event()
        self.stopping = threading.Event()


def _handler_class(session):
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, *args):
            pass

        def _reply(self, status, body=b"", headers=()):
            self.send_response(status)
            for k, v in headers:
                self.send_header(k, v)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def do_GET(self):
            if not self.path.startswith(PREFIX + "/invocation/next"):
                return self._reply(404)
            now = time.perf_counter()
            with session.lock:
                if session.first_poll is None:
                    session.first_poll = now
                    session.init_cpu_ms = _cpu_ms(session.pid)
                index = len(session.handed)
                if index < len(session.events):
                    session.handed.append(None)
            if index >= len(session.events):
                # No more events: hold the poll, as Lambda does, until stopped.
                session.stopping.wait(60)
                return self._reply(503)
            body = session.events[index].encode()
            headers = [
                ("Lambda-Runtime-Aws-Request-Id", f"req-{index}"),
                ("Lambda-Runtime-Deadline-Ms", str(int(time.time() * 1000) + 30_000)),
                ("Lambda-Runtime-Invoked-Function-Arn", "arn:aws:lambda:us-east-1:000000000000:function:bench"),
                ("Lambda-Runtime-Trace-Id", "Root=1-00000000-000000000000000000000000"),
                ("Content-Type", "application/json"),
            ]
            session.handed[index] = time.perf_counter()
            self._reply(200, body, headers)

        def do_POST(self):
            now = time.perf_counter()
            length = int(self.headers.get("Content-Length", 0) or 0)
            body = self.rfile.read(length).decode(errors="replace")
            # Acknowledge before signalling: the process is stopped right after.
            self._reply(202)
            if self.path.endswith("/init/error"):
                session.init_error = body
                session.all_answered.set()
                return
            status = "response" if self.path.endswith("/response") else "error"
            with session.lock:
                session.answered.append((now, status, body))
                if len(session.answered) == len(session.events):
                    session.all_answered.set()

    return Handler


class _QuietServer(ThreadingHTTPServer):
    def handle_error(self, request, client_address):
        pass  # a poll cut short when the process is stopped is expected


def _cpu_ms(pid):
    """CPU time used so far by the live threads of `pid`, in milliseconds."""
    if pid is None:
        return None
    total = 0
    try:
        for tid in os.listdir(f"/proc/{pid}/task"):
            with open(f"/proc/{pid}/task/{tid}/schedstat") as f:
                total += int(f.read().split()[0])
    except (OSError, ValueError, IndexError):
        return None
    return total / 1e6


def _peak_rss_kib(pid):
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1])
    except OSError:
        pass
    return None


def run_function(cmd, env, events, timeout_s=60, log_path=None):
    """Starts `cmd` with `env` plus the Runtime API variables, serves `events`
    in order, and returns init/latency/RSS figures (milliseconds, KiB)."""
    session = _Session(events)
    server = _QuietServer(("127.0.0.1", 0), _handler_class(session))
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, daemon=True).start()
    full_env = dict(
        os.environ,
        **env,
        AWS_LAMBDA_RUNTIME_API=f"127.0.0.1:{server.server_port}",
        AWS_LAMBDA_FUNCTION_NAME="bench",
        AWS_LAMBDA_FUNCTION_MEMORY_SIZE="128",
        AWS_LAMBDA_FUNCTION_VERSION="1",
    )
    log = open(log_path, "ab") if log_path else subprocess.DEVNULL
    started = time.perf_counter()
    proc = subprocess.Popen(cmd, env=full_env, stdout=log, stderr=log)
    session.pid = proc.pid
    try:
        finished = session.all_answered.wait(timeout_s)
        peak = _peak_rss_kib(proc.pid)
        exited = proc.poll()
    finally:
        session.stopping.set()
        proc.kill()
        proc.wait()
        server.shutdown()
        server.server_close()
        if log_path:
            log.close()
    result = {
        "init_ms": None if session.first_poll is None else (session.first_poll - started) * 1000,
        "init_cpu_ms": session.init_cpu_ms,
        "invocations": [
            {"ms": (answered - handed) * 1000, "status": status, "body": body}
            for handed, (answered, status, body) in zip(session.handed, session.answered)
        ],
        "peak_rss_kib": peak,
    }
    if session.init_error is not None:
        result["init_error"] = session.init_error
    if not finished:
        result["error"] = f"timed out after {timeout_s}s" + (f" (process exited {exited})" if exited is not None else "")
    return result


def main(argv):
    if len(argv) != 3:
        print(__doc__, file=sys.stderr)
        return 2
    with open(argv[2]) as f:
        event = f.read()
    out = run_function([argv[1]], {"AWS_REGION": os.environ.get("AWS_REGION", "us-east-1")}, [event], timeout_s=10)
    first = out["invocations"][0] if out["invocations"] else {}
    print(json.dumps({
        "init_ms": out["init_ms"] and round(out["init_ms"], 2),
        "init_cpu_ms": out["init_cpu_ms"] and round(out["init_cpu_ms"], 2),
        "first_response_ms": first.get("ms") and round(first["ms"], 2),
        "peak_rss_kib": out["peak_rss_kib"],
        "status": first.get("status"),
        "body": (first.get("body") or out.get("init_error") or "")[:300],
        **({"error": out["error"]} if "error" in out else {}),
    }))
    return 0 if first.get("status") == "response" else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv))
