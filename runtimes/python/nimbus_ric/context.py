"""The `context` object handed to Python handlers, with awslambdaric's attribute names/types.

Note `memory_limit_in_mb` is the *string* from AWS_LAMBDA_FUNCTION_MEMORY_SIZE, exactly as
awslambdaric exposes it. Environment-derived values are read once at start-up (the runtime
owns those variables) instead of on every invoke.
"""
import os
import sys
import time

from . import jsonio, logs
from .errors import FaultException

_env = os.environ
_LOG_GROUP = _env.get("AWS_LAMBDA_LOG_GROUP_NAME")
_LOG_STREAM = _env.get("AWS_LAMBDA_LOG_STREAM_NAME")
_FUNCTION_NAME = _env.get("AWS_LAMBDA_FUNCTION_NAME")
_MEMORY = _env.get("AWS_LAMBDA_FUNCTION_MEMORY_SIZE")
_VERSION = _env.get("AWS_LAMBDA_FUNCTION_VERSION")
_W3C_FIELDS = ("traceparent", "tracestate", "baggage")


def _parse_json_header(value, name):
    try:
        return jsonio.loads(value)
    except Exception as e:
        raise FaultException(FaultException.LAMBDA_CONTEXT_UNMARSHAL_ERROR,
                             "Unable to parse {} JSON: {}".format(name, str(e)))


class LambdaContext(object):
    def __init__(self, invoke_id, client_context_json, cognito_identity_json, deadline_ms,
                 invoked_function_arn=None, tenant_id=None):
        self.aws_request_id = invoke_id
        self.log_group_name = _LOG_GROUP
        self.log_stream_name = _LOG_STREAM
        self.function_name = _FUNCTION_NAME
        self.memory_limit_in_mb = _MEMORY
        self.function_version = _VERSION
        self.invoked_function_arn = invoked_function_arn
        self.tenant_id = tenant_id

        client_context = None
        if client_context_json:
            client_context = _parse_json_header(client_context_json, "Client Context")
        self._w3c_fields = _pop_w3c(client_context)
        self.client_context = _make_obj(ClientContext, client_context)
        if self.client_context is not None:
            self.client_context.client = _make_obj(Client, self.client_context.client)

        # awslambdaric always provides an identity object (fields None without the header).
        identity = {}
        if cognito_identity_json:
            identity = _parse_json_header(cognito_identity_json, "Cognito Identity") or {}
        self.identity = CognitoIdentity()
        self.identity.cognito_identity_id = identity.get("cognitoIdentityId")
        self.identity.cognito_identity_pool_id = identity.get("cognitoIdentityPoolId")

        self._epoch_deadline_time_in_ms = deadline_ms

    def get_remaining_time_in_millis(self):
        delta_ms = self._epoch_deadline_time_in_ms - int(time.time() * 1000)
        return delta_ms if delta_ms > 0 else 0

    def w3c(self):
        """W3C trace-context fields carried in the client context (awslambdaric API)."""
        return dict(self._w3c_fields)

    def log(self, msg):
        logging = sys.modules.get("logging")
        if logging is None:  # not imported yet: the sink its root handler would write to
            sink = logs.current_sink()
            if sink is not None:
                sink.log(str(msg))
                return
        else:
            for handler in logging.getLogger().handlers:
                if hasattr(handler, "log_sink"):
                    handler.log_sink.log(str(msg))
                    return
        sys.stdout.write(str(msg))

    def __repr__(self):
        return ("LambdaContext([aws_request_id={0.aws_request_id},log_group_name={0.log_group_name},"
                "log_stream_name={0.log_stream_name},function_name={0.function_name},"
                "memory_limit_in_mb={0.memory_limit_in_mb},function_version={0.function_version},"
                "invoked_function_arn={0.invoked_function_arn},client_context={0.client_context},"
                "identity={0.identity},tenant_id={0.tenant_id}])".format(self))


def _pop_w3c(client_context):
    if not isinstance(client_context, dict):
        return {}
    raw = client_context.pop("w3c", None)
    if not isinstance(raw, dict):
        return {}
    return {k: raw[k] for k in _W3C_FIELDS if isinstance(raw.get(k), str)}


class _Slots(object):
    __slots__ = ()

    def __repr__(self):
        fields = ",".join("%s=%s" % (f, getattr(self, f, None)) for f in self.__slots__)
        return "%s([%s])" % (self.__class__.__name__, fields)


class CognitoIdentity(_Slots):
    __slots__ = ("cognito_identity_id", "cognito_identity_pool_id")


class Client(_Slots):
    __slots__ = ("installation_id", "app_title", "app_version_name", "app_version_code",
                 "app_package_name")


class ClientContext(_Slots):
    __slots__ = ("custom", "env", "client")


def _make_obj(cls, values):
    if values is None:
        return None
    obj = cls()
    for field in cls.__slots__:
        setattr(obj, field, values.get(field))
    return obj
