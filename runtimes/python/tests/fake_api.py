"""In-test fake of the Lambda Runtime API plus a helper that runs the Python RIC against it.

The server hands out queued events on `GET /next` (long poll) and records every POST
(path, lower-cased headers, body, trailers) so tests can assert on exactly what the RIC sent.
"""
import http.server
import json
import os
import queue
import shutil
import subprocess
import tempfile
import textwrap
import threading
import time
import uuid

# Interpreter under test; override to check other versions (the RIC supports 3.9-3.13).
PYTHON = os.environ.get("NIMBUS_TEST_PYTHON", "/usr/bin/python3")
BOOTSTRAP = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "bootstrap.py")
API = "/2018-06-01/runtime"


class FakeRuntimeApi(object):
    def __init__(self):
        self.events = queue.Queue()
        self.posts = []
        self.cond = threading.Condition()
        self.closing = False
        self.drop_after_next = False  # simulate a server dropping idle keep-alive connections
        self.chunked_next = False  # send /next bodies with Transfer-Encoding: chunked
        api = self

        class Handler(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"  # keep-alive, like the real Runtime API

            def log_message(self, *args):
                pass

            def do_GET(self):
                if self.path != API + "/invocation/next":
                    return self._reply(404, b'{"errorType":"NotFound"}')
                while True:
                    try:
                        body, headers = api.events.get(timeout=0.05)
                        break
                    except queue.Empty:
                        if api.closing:
                            self.close_connection = True
                            return
                self.send_response(200)
                for name, value in headers.items():
                    self.send_header(name, value)
                if api.chunked_next:
                    self.send_header("Transfer-Encoding", "chunked")
                    self.end_headers()
                    half = len(body) // 2
                    for part in (body[:half], body[half:]):
                        if part:
                            self.wfile.write(b"%x\r\n%s\r\n" % (len(part), part))
                    self.wfile.write(b"0\r\n\r\n")
                else:
                    self.send_header("Content-Length", str(len(body)))
                    self.end_headers()
                    self.wfile.write(body)
                if api.drop_after_next:
                    self.close_connection = True  # no "Connection: close": the RIC must cope

            def do_POST(self):
                headers = {k.lower(): v for k, v in self.headers.items()}
                trailers = {}
                if "chunked" in headers.get("transfer-encoding", ""):
                    body = b""
                    while True:
                        size = int(self.rfile.readline().split(b";")[0].strip(), 16)
                        if size == 0:
                            break
                        body += self.rfile.read(size)
                        self.rfile.readline()
                    while True:
                        line = self.rfile.readline().strip()
                        if not line:
                            break
                        name, _, value = line.decode().partition(":")
                        trailers[name.strip().lower()] = value.strip()
                else:
                    body = self.rfile.read(int(headers.get("content-length", 0)))
                with api.cond:
                    api.posts.append({"path": self.path, "headers": headers, "body": body,
                                      "trailers": trailers})
                    api.cond.notify_all()
                self._reply(202, b'{"status":"OK"}')

            def _reply(self, status, body):
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

        class Server(http.server.ThreadingHTTPServer):
            daemon_threads = True

            def handle_error(self, request, client_address):
                pass  # the RIC is killed at the end of each test; resets are expected

        self.server = Server(("127.0.0.1", 0), Handler)
        self.address = "127.0.0.1:%d" % self.server.server_address[1]
        self.thread = threading.Thread(target=self.server.serve_forever, args=(0.01,), daemon=True)
        self.thread.start()

    def add_event(self, event, request_id=None, headers=None, raw=None, deadline_in=10.0):
        request_id = request_id or str(uuid.uuid4())
        all_headers = {
            "Lambda-Runtime-Aws-Request-Id": request_id,
            "Lambda-Runtime-Deadline-Ms": str(int((time.time() + deadline_in) * 1000)),
            "Lambda-Runtime-Invoked-Function-Arn": "arn:aws:lambda:us-east-1:123456789012:function:fn",
            "Lambda-Runtime-Trace-Id": "Root=1-5bef4de7-ad49b0e87f6ef6c87fc2e700;Parent=9a9197af755a6419;Sampled=1",
            "Content-Type": "application/json",
        }
        all_headers.update(headers or {})
        self.events.put((raw if raw is not None else json.dumps(event).encode(), all_headers))
        return request_id

    def wait_posts(self, count, timeout=5.0):
        deadline = time.time() + timeout
        with self.cond:
            while len(self.posts) < count:
                left = deadline - time.time()
                if left <= 0:
                    raise AssertionError("expected %d posts, got %d: %r" % (count, len(self.posts), self.posts))
                self.cond.wait(left)
            return list(self.posts)

    def close(self):
        self.closing = True
        self.server.shutdown()
        self.server.server_close()


class RicProcess(object):
    """Runs bootstrap.py for one task root (files given as {relative path: source})."""

    def __init__(self, api, handler, files, extra_env=None):
        self.task_root = tempfile.mkdtemp(prefix="nimbus-ric-py-")
        for rel, source in files.items():
            path = os.path.join(self.task_root, rel)
            os.makedirs(os.path.dirname(path), exist_ok=True)
            with open(path, "w") as f:
                f.write(textwrap.dedent(source))
        env = {
            "PATH": "/usr/bin:/bin",
            "LANG": "C.UTF-8",
            "AWS_LAMBDA_RUNTIME_API": api.address,
            "_HANDLER": handler,
            "LAMBDA_TASK_ROOT": self.task_root,
            "AWS_LAMBDA_FUNCTION_NAME": "fn",
            "AWS_LAMBDA_FUNCTION_VERSION": "$LATEST",
            "AWS_LAMBDA_FUNCTION_MEMORY_SIZE": "256",
            "AWS_LAMBDA_LOG_GROUP_NAME": "/aws/lambda/fn",
            "AWS_LAMBDA_LOG_STREAM_NAME": "2024/01/01/[$LATEST]0123456789abcdef0123456789abcdef",
            "AWS_REGION": "us-east-1",
            "PYTHONDONTWRITEBYTECODE": "1",
        }
        env.update(extra_env or {})
        self.proc = subprocess.Popen([PYTHON, BOOTSTRAP], cwd=self.task_root, env=env,
                                     stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        self.stdout = self.stderr = None

    def wait_exit(self, timeout=5.0):
        out, err = self.proc.communicate(timeout=timeout)
        self.stdout, self.stderr = out.decode(), err.decode()
        return self.proc.returncode

    def stop(self):
        if self.proc.poll() is None:
            self.proc.kill()
        if self.stdout is None:
            self.wait_exit()
        shutil.rmtree(self.task_root, ignore_errors=True)
        return self.stdout
