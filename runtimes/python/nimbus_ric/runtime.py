"""Init and the invoke loop of the Python RIC (lambda-compat.md §1, §3, §8), after awslambdaric.

Init: set up logging, import the handler named by `_HANDLER`; on failure log the error, POST it
to `/runtime/init/error` (Error-Type header = errorType) and exit(1).
Loop: GET `/next`, build the context, call `handler(event, context)`, POST the JSON result to
`/response` or the error body to `/error`, forever; module globals persist between invokes.
The loop body is kept free of imports and avoidable allocations: warm-invoke overhead matters.
"""
import os
import sys

from . import jsonio, logs
from .context import LambdaContext
from .errors import FaultException, error_from_exception, error_from_fault, make_error
from .loader import load_handler
from .rapid import RuntimeApiError, RuntimeClient

# simplejson (awslambdaric) escapes non-ASCII except on the python3.12 runtime; mirror that.
_ENSURE_ASCII = os.environ.get("AWS_EXECUTION_ENV") != "AWS_Lambda_python3.12"


def _json_default(obj):
    # Decimal (e.g. from DynamoDB): awslambdaric emits it as a JSON number. Checked by type name
    # so that the `decimal` module is only imported by code that actually uses it.
    if type(obj).__name__ == "Decimal" and type(obj).__module__ in ("decimal", "_decimal", "_pydecimal"):
        if obj.is_nan():
            return float("nan")
        return int(obj) if obj == obj.to_integral_value() and obj.is_finite() else float(obj)
    raise TypeError("Object of type %s is not JSON serializable" % type(obj).__name__)


_encoder = jsonio.Encoder(ensure_ascii=_ENSURE_ASCII, default=_json_default)
_error_encoder = jsonio.Encoder(default=str)  # error bodies must always serialize
_xray_encoder = jsonio.Encoder()


def _is_json(content_type):
    # awslambdaric passes non-JSON payloads through as raw bytes; a missing header means JSON.
    return not content_type or content_type.split(";", 1)[0].strip().lower() == "application/json"


def main():
    task_root = os.environ.get("LAMBDA_TASK_ROOT") or os.getcwd()
    handler_name = os.environ.get("_HANDLER", "")
    client = RuntimeClient(os.environ.get("AWS_LAMBDA_RUNTIME_API") or "127.0.0.1:9001")
    log_sink = logs.create_log_sink()
    logs.setup(log_sink)

    try:
        handler = load_handler(handler_name, task_root)
    except FaultException as e:
        _init_failed(client, log_sink, make_error(e.msg, e.exception_type, e.trace))
    except Exception as e:
        _init_failed(client, log_sink, error_from_exception(e)[0])

    try:
        _loop(client, handler, log_sink)
    except RuntimeApiError as e:
        # awslambdaric's behaviour: the single-concurrency client cannot continue; the platform
        # sees the exit and resets the environment.
        sys.stderr.write("[ERROR] Runtime.LambdaRuntimeClientError: %s\n" % e)
        sys.exit(1)


def _init_failed(client, log_sink, error):
    logs.log_error(error, log_sink)
    try:
        client.post_init_error(_error_encoder.encode(error), error["errorType"])
    except RuntimeApiError as e:
        sys.stderr.write("[ERROR] could not report init error: %s\n" % e)
    sys.exit(1)


def _loop(client, handler, log_sink):
    environ = os.environ
    loads = jsonio.loads
    encode = _encoder.encode
    set_request = logs.set_request
    next_invocation = client.next

    while True:
        request_id, headers, body = next_invocation()
        get = headers.get
        tenant_id = get("lambda-runtime-aws-tenant-id")
        set_request(request_id, tenant_id)
        trace_id = get("lambda-runtime-trace-id")
        if trace_id is not None:
            environ["_X_AMZN_TRACE_ID"] = trace_id
        elif "_X_AMZN_TRACE_ID" in environ:
            del environ["_X_AMZN_TRACE_ID"]

        error = None
        try:
            deadline = get("lambda-runtime-deadline-ms")
            context = LambdaContext(
                request_id, get("lambda-runtime-client-context"),
                get("lambda-runtime-cognito-identity"), int(deadline) if deadline else 0,
                get("lambda-runtime-invoked-function-arn"), tenant_id)
            if _is_json(get("content-type")):
                try:
                    event = loads(body)
                except Exception as e:
                    raise FaultException(FaultException.UNMARSHAL_ERROR,
                                         "Unable to unmarshal input: {}".format(str(e)))
            else:
                event = bytes(body)
            response = handler(event, context)
            if isinstance(response, bytes):
                result, content_type = response, "application/unknown"
            else:
                try:
                    result, content_type = encode(response), "application/json"
                except Exception as e:
                    raise FaultException(FaultException.MARSHAL_ERROR,
                                         "Unable to marshal response: {}".format(str(e)))
        except FaultException as e:
            error, xray = error_from_fault(e, request_id)
        except Exception as e:
            error, xray = error_from_exception(e, request_id)

        if error is None:
            client.post_response(request_id, result, content_type)
        else:
            logs.log_error(error, log_sink)
            client.post_error(request_id, _error_encoder.encode(error), _xray_encoder.encode(xray))
