"""Error taxonomy and error-body construction, mirroring awslambdaric.

Body posted to `/invocation/{id}/error` and `/init/error` (lambda-compat.md §1.3, §8):
`{"errorMessage", "errorType", "requestId", "stackTrace": [formatted frames]}`; for init errors
requestId is "". Stack traces omit the runtime's own leading frames so they start in user code.
"""
import importlib
import os

_RUNTIME_DIR = os.path.dirname(os.path.abspath(__file__))
# Frames of the import machinery sit between our loader and the user's module body.
_SKIPPED_PREFIXES = (_RUNTIME_DIR, os.path.dirname(importlib.__file__), "<frozen importlib")


class FaultException(Exception):
    """An error the runtime itself classifies (errorType is a `Runtime.*` name)."""

    MARSHAL_ERROR = "Runtime.MarshalError"
    UNMARSHAL_ERROR = "Runtime.UnmarshalError"
    USER_CODE_SYNTAX_ERROR = "Runtime.UserCodeSyntaxError"
    HANDLER_NOT_FOUND = "Runtime.HandlerNotFound"
    IMPORT_MODULE_ERROR = "Runtime.ImportModuleError"
    BUILT_IN_MODULE_CONFLICT = "Runtime.BuiltInModuleConflict"
    MALFORMED_HANDLER_NAME = "Runtime.MalformedHandlerName"
    LAMBDA_CONTEXT_UNMARSHAL_ERROR = "Runtime.LambdaContextUnmarshalError"

    def __init__(self, exception_type, msg, trace=None):
        Exception.__init__(self, msg)
        self.msg = msg
        self.exception_type = exception_type
        self.trace = trace


def make_error(error_message, error_type, stack_trace, request_id=None):
    return {
        "errorMessage": error_message if error_message else "",
        "errorType": error_type if error_type else "",
        "requestId": request_id if request_id is not None else "",
        "stackTrace": stack_trace if stack_trace else [],
    }


def _is_runtime_frame(filename):
    return filename.startswith(_SKIPPED_PREFIXES)


def extract_user_frames(tb):
    """(filename, lineno, name, line) tuples, without the runtime's leading frames.

    Plain tuples (not FrameSummary) on purpose: formatting them never adds the 3.11+ caret
    lines, so stackTrace entries look the same on every Python version, as with awslambdaric.
    """
    import traceback  # only on the error path: it costs a cold start several milliseconds

    frames = [(f.filename, f.lineno, f.name, f.line) for f in traceback.extract_tb(tb)]
    for i, frame in enumerate(frames):
        if not _is_runtime_frame(frame[0]):
            return frames[i:]
    return frames


def error_from_exception(exc, request_id=None, message=None):
    """(error body dict, xray cause dict) for an arbitrary exception."""
    import traceback

    frames = extract_user_frames(exc.__traceback__)
    body = make_error(message if message else str(exc), type(exc).__name__,
                      traceback.format_list(frames), request_id)
    return body, make_xray_fault(type(exc).__name__, str(exc), os.getcwd(), frames)


def error_from_fault(fault, request_id=None):
    body = make_error(fault.msg, fault.exception_type, fault.trace, request_id)
    return body, make_xray_fault("LambdaValidationError", fault.msg, os.getcwd(), [])


def make_xray_fault(ex_type, ex_msg, working_dir, frames):
    """Value of the Lambda-Runtime-Function-XRay-Error-Cause header (awslambdaric's shape)."""
    stack = [{"label": name, "path": path, "line": line} for path, line, name, _ in frames]
    return {
        "working_directory": working_dir,
        "exceptions": [{"message": ex_msg, "type": ex_type, "stack": stack}],
        "paths": sorted(set(f[0] for f in frames)),
    }
