"""The Lambda handler on the root logger: loaded only once something imports `logging`.

See logs.py for the formats; this module holds the parts that need the `logging` package.
"""
import logging
import time

from . import jsonio, logs

_DATETIME_FORMAT = logs._DATETIME_FORMAT
_RESERVED = frozenset((
    "name", "msg", "args", "levelname", "levelno", "pathname", "filename", "module", "exc_info",
    "exc_text", "stack_info", "lineno", "funcName", "created", "msecs", "relativeCreated",
    "thread", "threadName", "processName", "process", "aws_request_id", "tenant_id", "taskName"))
_JSON_RECORD = jsonio.Encoder(ensure_ascii=False, default=str)


class LambdaLoggerHandler(logging.Handler):
    def __init__(self, log_sink, typed_frames):
        logging.Handler.__init__(self)
        self.log_sink = log_sink
        self.typed_frames = typed_frames

    def emit(self, record):
        self.log_sink.log(self.format(record), record.levelno if self.typed_frames else None)


class LambdaLoggerFilter(logging.Filter):
    def filter(self, record):
        record.aws_request_id = logs._request_id or ""
        record.tenant_id = logs._tenant_id
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
        return _JSON_RECORD.encode({k: v for k, v in result.items() if v is not None}) + "\n"


def _format_tb(exc_info):
    if not exc_info:
        return None
    import traceback
    return traceback.format_tb(exc_info[2])


def install(log_sink, json_format, level, typed_frames):
    logging.Formatter.converter = time.gmtime  # global, as awslambdaric does: logs are in UTC
    handler = LambdaLoggerHandler(log_sink, typed_frames)
    if json_format:
        handler.setFormatter(JsonFormatter())
    else:
        handler.setFormatter(logging.Formatter(
            "[%(levelname)s]\t%(asctime)s.%(msecs)03dZ\t%(aws_request_id)s\t%(message)s\n",
            _DATETIME_FORMAT))
    if level and isinstance(logging.getLevelName(level), int):
        logging.getLogger().setLevel(level)
    handler.addFilter(LambdaLoggerFilter())
    logging.getLogger().addHandler(handler)
