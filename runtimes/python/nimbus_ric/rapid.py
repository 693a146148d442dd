"""Runtime API HTTP client (the RIC side of `/2018-06-01/runtime/...`).

A deliberately small HTTP/1.1 client over one kept-alive TCP connection instead of
`http.client`: measured on the target host, `http.client` costs ~88 us of CPU per
next+response cycle (its header parsing goes through `email.parser`) against ~20 us here, and
importing it pulls in `ssl`/`email` at cold start. We also use `_socket` rather than `socket`
because the wrapper module (enum + selectors) adds ~3 ms to every cold start.

Supported response framing: Content-Length, chunked (trailers ignored), and close-delimited.
Semantics follow awslambdaric: any failure of `/next` or a non-2xx answer to a POST raises
RuntimeApiError, which ends the process (single-concurrency client, the platform restarts it).
"""
import _socket
import sys

_API = "/2018-06-01/runtime"
_USER_AGENT = "nimbus-ric-python/%d.%d.%d" % sys.version_info[:3]


class RuntimeApiError(Exception):
    pass


class _Closed(Exception):
    """The peer closed the connection; `fresh` = before any byte of the response arrived."""

    def __init__(self, fresh):
        Exception.__init__(self, "connection closed by the Runtime API")
        self.fresh = fresh


def split_address(address):
    """'host:port' or '[v6]:port' -> (host, port)."""
    host, sep, port = address.rpartition(":")
    if not sep or not port.isdigit():
        raise RuntimeApiError("AWS_LAMBDA_RUNTIME_API must be host:port, got %r" % address)
    return host.strip("[]") or "127.0.0.1", int(port)


def _ascii(host):
    """Host names as bytes where possible: `_socket` runs a `str` host through the "idna"
    codec, whose import (with `re` and `unicodedata`) costs a cold start milliseconds."""
    try:
        return host.encode("ascii")
    except UnicodeEncodeError:
        return host


class RuntimeClient(object):
    def __init__(self, address):
        self._host, self._port = split_address(address)
        self._sockaddr = None  # resolved once, reused for reconnects
        self._sock = None
        self._rbuf = bytearray()
        self._head = ("Host: %s\r\nUser-Agent: %s\r\n" % (address, _USER_AGENT)).encode("latin-1")
        self._next_request = b"GET " + _API.encode() + b"/invocation/next HTTP/1.1\r\n" + self._head + b"\r\n"

    # ---- public API -------------------------------------------------------------------------

    def next(self):
        """Block until the next event. Returns (request_id, headers(lowercase keys), body)."""
        status, headers, body = self._roundtrip(self._next_request)
        if status != 200:
            raise RuntimeApiError("/next answered %d: %r" % (status, bytes(body[:512])))
        request_id = headers.get("lambda-runtime-aws-request-id")
        if not request_id:
            raise RuntimeApiError("/next answer lacks Lambda-Runtime-Aws-Request-Id")
        return request_id, headers, body

    def post_response(self, request_id, body, content_type="application/json"):
        self._post("/invocation/%s/response" % request_id, body, content_type, ())

    def post_error(self, request_id, body, xray_cause=None):
        extra = ()
        # Same guard as awslambdaric: X-Ray cause is best-effort and dropped when huge.
        if xray_cause and len(xray_cause) < 1024 * 1024:
            extra = (("Lambda-Runtime-Function-XRay-Error-Cause", xray_cause),)
        self._post("/invocation/%s/error" % request_id, body, "application/json", extra)

    def post_init_error(self, body, error_type):
        self._post("/init/error", body, "application/json",
                   (("Lambda-Runtime-Function-Error-Type", error_type),))

    # ---- HTTP plumbing ----------------------------------------------------------------------

    def _post(self, path, body, content_type, extra_headers):
        if isinstance(body, str):
            body = body.encode("utf-8")
        head = b"POST " + (_API + path).encode("latin-1") + b" HTTP/1.1\r\n" + self._head
        head += ("Content-Type: %s\r\nContent-Length: %d\r\n" % (content_type, len(body))).encode("latin-1")
        for name, value in extra_headers:
            head += ("%s: %s\r\n" % (name, value)).encode("latin-1", "replace")
        status, _, answer = self._roundtrip(head + b"\r\n" + body)
        if not 200 <= status < 300:
            raise RuntimeApiError("POST %s answered %d: %r" % (path, status, bytes(answer[:512])))

    def _roundtrip(self, request):
        for attempt in (0, 1):
            reused = self._sock is not None
            try:
                if not reused:
                    self._connect()
                self._sock.sendall(request)
                return self._read_response()
            except _Closed as e:
                self._close()
                # A kept-alive connection the server dropped while idle: safe to resend once.
                if not (reused and e.fresh and attempt == 0):
                    raise RuntimeApiError(str(e))
            except OSError as e:
                self._close()
                if not (reused and attempt == 0 and isinstance(e, (BrokenPipeError, ConnectionResetError))):
                    raise RuntimeApiError("Runtime API request failed: %s" % e)
        raise RuntimeApiError("unreachable")

    def _connect(self):
        if self._sockaddr is None:
            infos = _socket.getaddrinfo(_ascii(self._host), self._port, 0, _socket.SOCK_STREAM)
            family, sockaddr = infos[0][0], infos[0][4]
            self._sockaddr = family, (_ascii(sockaddr[0]),) + tuple(sockaddr[1:])
        family, sockaddr = self._sockaddr
        sock = _socket.socket(family, _socket.SOCK_STREAM)
        try:
            sock.setsockopt(_socket.IPPROTO_TCP, _socket.TCP_NODELAY, 1)
            sock.connect(sockaddr)
        except BaseException:
            sock.close()
            raise
        self._sock = sock
        self._rbuf = bytearray()

    def _close(self):
        if self._sock is not None:
            try:
                self._sock.close()
            except OSError:
                pass
        self._sock = None

    def _fill(self):
        chunk = self._sock.recv(65536)
        if not chunk:
            raise _Closed(False)
        self._rbuf += chunk

    def _read_exact(self, n):
        while len(self._rbuf) < n:
            self._fill()
        data = self._rbuf[:n]
        del self._rbuf[:n]
        return data

    def _read_line(self):
        while True:
            i = self._rbuf.find(b"\r\n")
            if i >= 0:
                return bytes(self._read_exact(i + 2)[:-2])
            self._fill()

    def _read_response(self):
        rbuf = self._rbuf
        while True:
            end = rbuf.find(b"\r\n\r\n")
            while end < 0:
                chunk = self._sock.recv(65536)
                if not chunk:
                    raise _Closed(not rbuf)
                rbuf += chunk
                end = rbuf.find(b"\r\n\r\n", max(0, len(rbuf) - len(chunk) - 3))
            lines = bytes(rbuf[:end]).split(b"\r\n")
            del rbuf[:end + 4]
            parts = lines[0].split(None, 2)
            if len(parts) < 2 or not parts[0].startswith(b"HTTP/"):
                raise RuntimeApiError("malformed status line %r" % lines[0][:100])
            status = int(parts[1])
            if 100 <= status < 200:
                continue  # interim response (e.g. 100 Continue): the real one follows
            headers = {}
            for line in lines[1:]:
                name, _, value = line.partition(b":")
                headers[name.strip().lower().decode("latin-1")] = value.strip().decode("latin-1")
            break
        if "chunked" in headers.get("transfer-encoding", "").lower():
            body = self._read_chunked()
        elif "content-length" in headers:
            body = self._read_exact(int(headers["content-length"]))
        elif status in (204, 304):
            body = bytearray()
        else:  # close-delimited body
            try:
                while True:
                    self._fill()
            except _Closed:
                pass
            body, self._rbuf = self._rbuf, bytearray()
            self._close()
        if self._sock is not None and (headers.get("connection", "").lower() == "close"
                                       or parts[0] == b"HTTP/1.0"):
            self._close()
        return status, headers, body

    def _read_chunked(self):
        body = bytearray()
        while True:
            size = int(self._read_line().split(b";", 1)[0].strip() or b"0", 16)
            if size == 0:
                while self._read_line():  # trailer section ends with an empty line
                    pass
                return body
            body += self._read_exact(size)
            self._read_exact(2)
