# Usage: TIDEGATE_CONFIG="$(cat cfg.toml)" python3 lambda-rollback/tests/measure_init.py target/lambda/tidegate-rollback/bootstrap shared/tests/fixtures/events/eventbridge-alarm-configuration-change.json
# Minimal Lambda Runtime API emulator: measures process start -> first
# /next poll (init), and the first invocation's response time.
import json, os, subprocess, sys, threading, time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

event = open(sys.argv[2]).read().encode()
marks = {}
done = threading.Event()

class H(BaseHTTPRequestHandler):
    def log_message(self, *a): pass
    def do_GET(self):
        if self.path.endswith("/invocation/next"):
            if "next" in marks:
                done.wait(5); time.sleep(5); return
            marks["next"] = time.perf_counter()
            self.send_response(200)
            self.send_header("Lambda-Runtime-Aws-Request-Id", "req-1")
            self.send_header("Lambda-Runtime-Deadline-Ms", str(int(time.time()*1000)+30000))
            self.send_header("Lambda-Runtime-Invoked-Function-Arn", "arn:aws:lambda:us-east-1:000000000000:function:tg")
            self.send_header("Content-Length", str(len(event)))
            self.end_headers(); self.wfile.write(event)
    def do_POST(self):
        n = int(self.headers.get("Content-Length", 0)); body = self.rfile.read(n)
        marks["resp"] = time.perf_counter(); marks["body"] = body.decode()[:300]; marks["path"] = self.path
        self.send_response(202); self.end_headers(); done.set()

srv = ThreadingHTTPServer(("127.0.0.1", 0), H)
threading.Thread(target=srv.serve_forever, daemon=True).start()
env = dict(os.environ, AWS_LAMBDA_RUNTIME_API=f"127.0.0.1:{srv.server_port}", AWS_LAMBDA_FUNCTION_NAME="tg",
           AWS_LAMBDA_FUNCTION_MEMORY_SIZE="128", AWS_LAMBDA_FUNCTION_VERSION="1", AWS_REGION="us-east-1")
t0 = time.perf_counter()
p = subprocess.Popen([sys.argv[1]], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
done.wait(10)
p.kill(); p.wait()
print(json.dumps({"init_ms": round((marks["next"]-t0)*1000, 2), "first_response_ms": round((marks["resp"]-marks["next"])*1000, 2), "path": marks.get("path"), "body": marks.get("body")}))
