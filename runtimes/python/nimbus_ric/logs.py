"""Logging setup, mirroring awslambdaric (lambda-compat.md §7).

- stdout/stderr become unbuffered: every write reaches the platform at once, so nothing is
  lost if the environment is frozen or killed right after the handler returns.
- The root logger gets one handler: text format
  `[LEVEL]\\t<UTC time>.<ms>Z\\t<request id>\\t<message>` or, with AWS_LAMBDA_LOG_FORMAT=JSON,
  awslambdaric's JSON records. As on Lambda the root level stays WARNING unless
  AWS_LAMBDA_LOG_LEVEL is set (so a bare `logging.info()` is dropped, exactly like on AWS).
- Unhandled errors are logged as ONE record: lines joined with '\\r' and leading spaces turned
  into NO-BREAK SPACEs (what awslambdaric writes), so a line-based collector keeps them together.
- If `_LAMBDA_TELEMETRY_LOG_FD` is set, records go to that fd as frames instead
  (4-byte type, 4-byte length, 8-byte µs timestamp, payload; big-endian).
"""
import os
import sys
import time

from . import jsonio

_request_id = None
_tenant_id = None
_sink = None
_ERROR = 40  # logging.ERROR

_JSON = (os.environ.get("AWS_LAMBDA_LOG_FORMAT") or "").upper() == "JSON"
_LEVEL = {None: "", "TRACE": "DEBUG"}.get(os.environ.get("AWS_LAMBDA_LOG_LEVEL"),
                                          os.environ.get("AWS_LAMBDA_LOG_LEVEL", "")).upper()
_DATETIME_FORMAT = "%Y-%m-%dT%H:%M:%S"
_TEXT_FRAME, _JSON_FRAME = 0xA55A0003, 0xA55A0002
# awslambdaric only tags frames with the record's level when JSON or a log level is configured.
_TYPED_FRAMES = _JSON or bool(_LEVEL)


def set_request(request_id, tenant_id=None):
    global _request_id, _tenant_id
    _request_id = request_id
    _tenant_id = tenant_id


def _frame_type(levelno):
    """Frame type; the level is encoded in bits 2-4 as by awslambdaric and the Node RIC."""
    base = _JSON_FRAME if _JSON else _TEXT_FRAME
    if not levelno:
        return base
    return base | ((min(50, max(0, levelno)) // 10 + 1) * 4)


class Unbuffered(object):
    """Write-through wrapper for sys.stdout/sys.stderr (same approach as awslambdaric)."""

    def __init__(self, stream):
        self.stream = stream

    def __getattr__(self, attr):
        return getattr(self.stream, attr)

    def write(self, msg):
        n = self.stream.write(msg)
        self.stream.flush()
        return n

    def writelines(self, msgs):
        self.stream.writelines(msgs)
        self.stream.flush()


class StandardLogSink(object):
    def log(self, msg, levelno=None):
        sys.stdout.write(msg)

    def log_error(self, lines):
        sys.stdout.write("\r".join(lines) + "\n")


class FramedTelemetryLogSink(object):
    def __init__(self, fd):
        self._file = os.fdopen(fd, "wb", 0)

    def log(self, msg, levelno=None):
        data = msg.encode("utf-8")
        header = _frame_type(levelno).to_bytes(4, "big") + len(data).to_bytes(4, "big")
        self._file.write(header + (time.time_ns() // 1000).to_bytes(8, "big") + data)

    def log_error(self, lines):
        self.log("\n".join(lines), _ERROR)


def create_log_sink():
    fd = os.environ.pop("_LAMBDA_TELEMETRY_LOG_FD", None)
    if fd is not None:
        return FramedTelemetryLogSink(int(fd))
    return StandardLogSink()


def setup(log_sink):
    """Install unbuffered stdio, and the root logging handler before user code can log.

    `logging` is not imported here: it costs a cold start more than the interpreter's own
    start-up, and many handlers never use it. Instead the handler is installed the moment
    anything imports `logging` (or now, if something already has), so user code finds the
    root logger exactly as on Lambda whenever it looks.
    """
    global _sink
    _sink = log_sink
    sys.stdout = Unbuffered(sys.stdout)
    sys.stderr = Unbuffered(sys.stderr)
    if "logging" in sys.modules:
        _configure_logging()
    else:
        sys.meta_path.insert(0, _LoggingImportHook())


def current_sink():
    """The sink `setup` installed (None before)."""
    return _sink


def _configure_logging():
    from . import pylogging

    pylogging.install(_sink, _JSON, _LEVEL, _TYPED_FRAMES)


class _LoggingImportHook(object):
    """A `sys.meta_path` finder that configures `logging` right after its first import."""

    def find_spec(self, name, path=None, target=None):
        if name != "logging":
            return None
        sys.meta_path.remove(self)  # one shot; also keeps the lookup below from recursing
        for finder in sys.meta_path:
            find_spec = getattr(finder, "find_spec", None)
            spec = find_spec(name, path, target) if find_spec else None
            if spec is not None:
                if spec.loader is not None:
                    spec.loader = _ConfiguringLoader(spec.loader)
                return spec
        return None


class _ConfiguringLoader(object):
    """Wraps the `logging` package's loader: execute it, then install the Lambda handler."""

    def __init__(self, loader):
        self._loader = loader

    def __getattr__(self, attr):  # get_source, is_package, ... for tracebacks and tools
        return getattr(self._loader, attr)

    def create_module(self, spec):
        return self._loader.create_module(spec)

    def exec_module(self, module):
        self._loader.exec_module(module)
        _configure_logging()


_NBSP = "\u00a0"
_JSON_ENCODER = jsonio.Encoder()


def log_error(error, log_sink):
    """Log an error body (dict from errors.make_error) as awslambdaric does."""
    if _JSON:
        record = {"timestamp": time.strftime(_DATETIME_FORMAT, time.gmtime()), "level": "ERROR"}
        record.update(error)
        log_sink.log_error([_JSON_ENCODER.encode(record)])
        return
    description = "[ERROR]"
    if error.get("errorType"):
        description += " " + error["errorType"]
    if error.get("errorMessage"):
        description += (":" if error.get("errorType") else "") + " " + error["errorMessage"]
    lines = [description]
    stack = error.get("stackTrace")
    if stack is not None:
        lines.append("Traceback (most recent call last):")
        for element in stack:
            if element == "":
                lines.append("")
                continue
            for line in element.splitlines():
                stripped = line.lstrip(" ")
                lines.append(_NBSP * (len(line) - len(stripped)) + stripped)
    log_sink.log_error(lines)
