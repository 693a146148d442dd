"""Nimbus Python runtime interface client (RIC): process entry point.

The platform starts it as `/usr/bin/python3 /var/runtime/python/bootstrap.py` with the
working directory at LAMBDA_TASK_ROOT. Everything else lives in the `nimbus_ric` package next
to this file (this script is kept tiny because Python never caches bytecode for the script it
runs directly).
"""
import os
import sys


def _main():
    here = os.path.dirname(os.path.abspath(__file__))
    sys.path.insert(0, here)
    import nimbus_ric.runtime

    # Our package is in sys.modules now. Drop the runtime directory from the import path so the
    # user's modules are resolved exactly as on Lambda (task root first), never against ours.
    sys.path[:] = [p for p in sys.path if os.path.abspath(p or ".") != here]
    nimbus_ric.runtime.main()


if __name__ == "__main__":
    _main()
