"""The demo's HTTP server: the standard library's ThreadingHTTPServer on 127.0.0.1, one page.

Safe by default, because it runs on a learner's machine while they browse other sites:

- it binds 127.0.0.1 only, and answers only requests addressed to it by that name or
  ``localhost`` (a web page elsewhere cannot reach it through DNS rebinding);
- it serves only its own files, read from the package into memory when it starts: a path
  from a request is a key in a dict, never a path on the disk;
- a POST must say ``Content-Type: application/json`` (a cross-site form cannot send that
  without the browser asking first, and the server answers no such question) and a
  Content-Length of at most ``MAX_BODY_BYTES``; a larger body is refused before it is read;
- malformed JSON and wrong image sizes get a 4xx and one line of text; a slow client is cut
  off after ``REQUEST_TIMEOUT_SECONDS``.

Routes: ``GET /`` (the page), ``GET /app.js``, ``GET /style.css``, ``GET /api/model``,
``GET /api/test-image``, ``POST /api/predict``.
"""
import json
import sys
import traceback
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from importlib import resources

from .app import RequestError

HOST = "127.0.0.1"
#: 280 x 280 bytes of ink in base64 is 104,536 bytes; the rest is slack for the JSON around it.
MAX_BODY_BYTES = 128 * 1024
REQUEST_TIMEOUT_SECONDS = 10
#: The page's files: URL path -> (file in nncore/demo/static, content type).
STATIC_FILES = {
    "/": ("index.html", "text/html; charset=utf-8"),
    "/app.js": ("app.js", "text/javascript; charset=utf-8"),
    "/style.css": ("style.css", "text/css; charset=utf-8"),
}
#: Only the page's own files, no inline script, no other origin.
_CONTENT_SECURITY_POLICY = "default-src 'self'; img-src 'self' data:; base-uri 'none'; form-action 'none'"


def read_static_files():
    """{URL path: (bytes, content type)}: the page's files, read from the installed package once."""
    static = resources.files("nncore.demo") / "static"
    return {path: (static.joinpath(name).read_bytes(), content_type)
            for path, (name, content_type) in STATIC_FILES.items()}


class DemoServer(ThreadingHTTPServer):
    """Serves ``app`` (a ``DemoApp``) on 127.0.0.1:``port`` (0: a free port the system picks)."""

    daemon_threads = True  # a request still running does not hold up Ctrl-C

    def __init__(self, app, port=0):
        self.app = app
        self.static_files = read_static_files()
        super().__init__((HOST, port), DemoRequestHandler)
        self.allowed_hosts = {f"{HOST}:{self.port}", f"localhost:{self.port}"}

    @property
    def port(self):
        return self.server_address[1]

    @property
    def url(self):
        return f"http://{HOST}:{self.port}/"


class DemoRequestHandler(BaseHTTPRequestHandler):
    """One request: route it, answer with a file, JSON, or a 4xx and one line."""

    protocol_version = "HTTP/1.1"  # keep-alive: the page sends a request per stroke
    # Headers and body leave in two writes: with Nagle's algorithm, the client's delayed ACK
    # held every reply back by ~40 ms (1,000 replies took 69 s).
    disable_nagle_algorithm = True
    timeout = REQUEST_TIMEOUT_SECONDS
    server_version = "nncore-demo"
    sys_version = ""

    def do_GET(self):
        self._answer(self._get)

    def do_POST(self):
        self._answer(self._post)

    def _answer(self, route):
        try:
            self._check_host()
            route()
        except RequestError as error:
            self._send_error_line(error.status, str(error))
        except Exception:  # a bug: one line to the client, the traceback to the terminal
            traceback.print_exc(file=sys.stderr)
            self._send_error_line(500, "internal error (the terminal running nncore demo has the details)")

    def _get(self):
        path = self.path.split("?", 1)[0]
        if path in self.server.static_files:
            body, content_type = self.server.static_files[path]
            self._send(200, body, content_type)
        elif path == "/api/model":
            self._send_json(self.server.app.describe())
        elif path == "/api/test-image":
            self._send_json(self.server.app.random_test_image())
        elif path == "/api/predict":
            raise RequestError(405, "use POST for /api/predict")
        else:
            raise RequestError(404, f"no such page: {path[:80]}")

    def _post(self):
        path = self.path.split("?", 1)[0]
        if path != "/api/predict":
            raise RequestError(404 if path not in self.server.static_files else 405,
                               f"POST goes to /api/predict, not {path[:80]}")
        self._send_json(self.server.app.predict_drawing(self._json_body()))

    def _check_host(self):
        host = self.headers.get("Host", "")
        if host not in self.server.allowed_hosts:
            raise RequestError(403, f"this server answers requests for {self.server.url} only, not Host {host[:80]!r}")

    def _json_body(self):
        content_type = self.headers.get("Content-Type", "").split(";", 1)[0].strip().lower()
        if content_type != "application/json":
            raise RequestError(415, f"expected Content-Type application/json, got {content_type[:60]!r}")
        declared = self.headers.get("Content-Length")
        if declared is None:
            raise RequestError(411, "a Content-Length header is required")
        if not declared.isdigit():
            raise RequestError(400, f"Content-Length {declared[:40]!r} is not a number")
        length = int(declared)
        if length > MAX_BODY_BYTES:
            raise RequestError(413, f"request body of {length} bytes is over the limit of {MAX_BODY_BYTES}")
        body = self.rfile.read(length)
        if len(body) != length:
            raise RequestError(400, f"request body ended after {len(body)} of {length} bytes")
        try:
            return json.loads(body)
        except (UnicodeDecodeError, ValueError) as error:
            raise RequestError(400, f"malformed JSON: {error}") from None

    def _send_json(self, reply):
        self._send(200, json.dumps(reply, allow_nan=False).encode("utf-8"), "application/json")

    def _send_error_line(self, status, message):
        # The body of a refused request may not have been read: close rather than parse it as a request.
        self.close_connection = True
        line = " ".join(message.split())  # one line, whatever the message held
        self._send(status, f"{status} {HTTPStatus(status).phrase}: {line}\n".encode("utf-8"),
                   "text/plain; charset=utf-8")

    def _send(self, status, body, content_type):
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.send_header("Cache-Control", "no-store")
        self.send_header("X-Content-Type-Options", "nosniff")
        self.send_header("Content-Security-Policy", _CONTENT_SECURITY_POLICY)
        if self.close_connection:
            self.send_header("Connection", "close")
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    def log_message(self, format, *args):
        """Quiet: a request per stroke would flood the terminal; refusals are logged by log_request."""

    def log_request(self, code="-", size="-"):
        if isinstance(code, int) and code >= 400:
            sys.stderr.write(f"nncore demo: {code} {self.command} {self.path[:80]!r}\n")
