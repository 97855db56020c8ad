"""A minimal Lambda custom-runtime loop for handler.py (what awslambdaric does,
without its extras): import the handler (init), then GET the next event,
call the handler, POST its result, forever. Standard library only.
Usage: python3 bench/lambda-python/bootstrap.py  (AWS_LAMBDA_RUNTIME_API set)
"""

import http.client
import json
import os
import sys
import traceback

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
BASE = "/2018-06-01/runtime"
conn = http.client.HTTPConnection(os.environ["AWS_LAMBDA_RUNTIME_API"])


def post(path, body):
    conn.request("POST", BASE + path, body=json.dumps(body).encode(), headers={"Content-Type": "application/json"})
    conn.getresponse().read()


try:
    from handler import handler  # init: boto3 import and clients
except Exception as e:  # report the init error the way the runtime does
    post("/init/error", {"errorMessage": str(e), "errorType": type(e).__name__})
    raise

while True:
    conn.request("GET", BASE + "/invocation/next")
    resp = conn.getresponse()
    event = json.loads(resp.read())
    request_id = resp.getheader("Lambda-Runtime-Aws-Request-Id")
    try:
        result = handler(event, None)
        post(f"/invocation/{request_id}/response", result)
    except Exception as e:
        traceback.print_exc()
        post(f"/invocation/{request_id}/error", {"errorMessage": str(e), "errorType": type(e).__name__})
