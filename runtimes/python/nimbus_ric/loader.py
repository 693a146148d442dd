"""Handler resolution from `_HANDLER` (lambda-compat.md §3.4), mirroring awslambdaric.

`pkg/mod.func` and `pkg.mod.func` are equivalent: split on the LAST '.', then '/' -> '.' in the
module part. Failures raise FaultException with awslambdaric's errorType and message texts;
any other exception raised while the module body runs propagates unchanged (awslambdaric then
reports it under its own class name).
"""
import importlib
import sys

from .errors import FaultException


def load_handler(handler, task_root):
    # Task root first, like Lambda: user modules shadow anything else on the path.
    if task_root in sys.path:
        sys.path.remove(task_root)
    sys.path.insert(0, task_root)

    try:
        modname, fname = handler.rsplit(".", 1)
    except ValueError as e:
        raise FaultException(FaultException.MALFORMED_HANDLER_NAME,
                             "Bad handler '{}': {}".format(handler, str(e)))

    try:
        if modname.split(".")[0] in sys.builtin_module_names:
            raise FaultException(FaultException.BUILT_IN_MODULE_CONFLICT,
                                 "Cannot use built-in module {} as a handler module".format(modname))
        module = importlib.import_module(modname.replace("/", "."))
    except ImportError as e:
        raise FaultException(FaultException.IMPORT_MODULE_ERROR,
                             "Unable to import module '{}': {}".format(modname, str(e)))
    except SyntaxError as e:
        trace = ['  File "%s" Line %s\n    %s' % (e.filename, e.lineno, e.text)]
        raise FaultException(FaultException.USER_CODE_SYNTAX_ERROR,
                             "Syntax error in module '{}': {}".format(modname, str(e)), trace)

    try:
        return getattr(module, fname)
    except AttributeError:
        raise FaultException(FaultException.HANDLER_NOT_FOUND,
                             "Handler '{}' missing on module '{}'".format(fname, modname))
