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
import json
import logging
import os
import sys
import time

_request_id = None
_tenant_id = None

_JSON = (os.environ.get("AWS_LAMBDA_LOG_FORMAT") or "").upper() == "JSON"
_LEVEL = {None: "", "TRACE": "DEBUG"}.get(os.environ.get("AWS_LAMBDA_LOG_LEVEL"),
                                          os.environ.get("AWS_LAMBDA_LOG_LEVEL", "")).upper()
_DATETIME_FORMAT = "%Y-%m-%dT%H:%M:%S"
_TEXT_FRAME, _JSON_FRAME = 0xA55A0003, 0xA55A0002
# awslambdaric only tags frames with the record's level when JSON or a log level is configured.
_TYPED_FRAMES = _JSON or bool(_LEVEL)
_RESERVED = frozenset((
    "name", "msg", "args", "levelname", "levelno", "pathname", "filename", "module", "exc_info",
    "exc_text", "stack_info", "lineno", "funcName", "created", "msecs", "relativeCreated",
    "thread", "threadName", "processName", "process", "aws_request_id", "tenant_id", "taskName"))


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
        self.log("\n".join(lines), logging.ERROR)


class LambdaLoggerHandler(logging.Handler):
    def __init__(self, log_sink):
        logging.Handler.__init__(self)
        self.log_sink = log_sink

    def emit(self, record):
        self.log_sink.log(self.format(record), record.levelno if _TYPED_FRAMES else None)


class LambdaLoggerFilter(logging.Filter):
    def filter(self, record):
        record.aws_request_id = _request_id or ""
        record.tenant_id = _tenant_id
        return True


class JsonFormatter(logging.Formatter):
    """awslambdaric's JSON application-log record; keys with None values are dropped."""

    def formatTime(self, record, datefmt=None):
        return time.strftime(_DATETIME_FORMAT, time.gmtime(record.created)) + ".%03dZ" % record.msecs

    def format(self, record):
        levelno = min(50, max(0, record.levelno)) // 10 * 10
        exc = record.exc_info
        result = {
            "timestamp": self.formatTime(record),
            "level": logging.getLevelName(levelno),
            "message": record.getMessage(),
            "logger": record.name,
            "stackTrace": _format_tb(exc),
            "errorType": exc[0].__name__ if exc else None,
            "errorMessage": str(exc[1]) if exc else None,
            "requestId": getattr(record, "aws_request_id", None),
            "location": "%s:%s:%s" % (record.pathname, record.funcName, record.lineno) if exc else None,
        }
        if getattr(record, "tenant_id", None) is not None:
            result["tenantId"] = record.tenant_id
        for key, value in record.__dict__.items():
            if key not in _RESERVED and key not in result and not key.startswith("_"):
                result[key] = value
        return json.dumps({k: v for k, v in result.items() if v is not None},
                          ensure_ascii=False, default=str) + "\n"


def _format_tb(exc_info):
    if not exc_info:
        return None
    import traceback
    return traceback.format_tb(exc_info[2])


def create_log_sink():
    fd = os.environ.pop("_LAMBDA_TELEMETRY_LOG_FD", None)
    if fd is not None:
        return FramedTelemetryLogSink(int(fd))
    return StandardLogSink()


def setup(log_sink):
    """Install unbuffered stdio and the root logging handler (before user code is imported)."""
    sys.stdout = Unbuffered(sys.stdout)
    sys.stderr = Unbuffered(sys.stderr)
    logging.Formatter.converter = time.gmtime  # global, as awslambdaric does: logs are in UTC
    handler = LambdaLoggerHandler(log_sink)
    if _JSON:
        handler.setFormatter(JsonFormatter())
    else:
        handler.setFormatter(logging.Formatter(
            "[%(levelname)s]\t%(asctime)s.%(msecs)03dZ\t%(aws_request_id)s\t%(message)s\n",
            _DATETIME_FORMAT))
    if _LEVEL and isinstance(logging.getLevelName(_LEVEL), int):
        logging.getLogger().setLevel(_LEVEL)
    handler.addFilter(LambdaLoggerFilter())
    logging.getLogger().addHandler(handler)


_NBSP = "\u00a0"


def log_error(error, log_sink):
    """Log an error body (dict from errors.make_error) as awslambdaric does."""
    if _JSON:
        record = {"timestamp": time.strftime(_DATETIME_FORMAT, time.gmtime()), "level": "ERROR"}
        record.update(error)
        log_sink.log_error([json.dumps(record)])
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
