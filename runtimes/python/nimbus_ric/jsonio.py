"""JSON for the runtime's own traffic, on CPython's `_json` accelerator directly.

`import json` costs a cold start about as much as starting the interpreter does again: its
decoder and encoder modules compile regular expressions at import time (pulling in `re` and
`enum`), although the C scanner and encoder they hand the work to need none of it. Events and
results go through those same C routines here, with the settings `json.loads` / `json.dumps`
use, so the output is byte-for-byte what `json` produces. Anything unusual (invalid input, a
byte-order mark, another encoding, an interpreter without `_json`) is handed to the `json`
module itself, which then raises or decodes exactly as it always does.
"""
try:
    import _json
except ImportError:  # pragma: no cover - CPython always has it
    _json = None

_WHITESPACE = " \t\n\r"
_CONSTANTS = {"-Infinity": float("-inf"), "Infinity": float("inf"), "NaN": float("nan")}


class _ScanContext(object):
    """The attributes `_json.make_scanner` reads: `json.loads`'s defaults."""

    strict = True
    object_hook = None
    object_pairs_hook = None
    parse_float = float
    parse_int = int
    parse_constant = _CONSTANTS.__getitem__


_scan = None
if _json is not None:
    try:
        _scan = _json.make_scanner(_ScanContext())
    except Exception:  # pragma: no cover - a CPython whose scanner wants something else
        _scan = None


def _stdlib():
    import json

    return json


def loads(data):
    """`json.loads(data)`, for `str`, `bytes` or `memoryview`."""
    if _scan is not None:
        try:
            text = data if isinstance(data, str) else bytes(data).decode("utf-8")
            end, length = 0, len(text)
            while end < length and text[end] in _WHITESPACE:
                end += 1
            value, end = _scan(text, end)
            while end < length and text[end] in _WHITESPACE:
                end += 1
            if end == length:
                return value
        except Exception:
            pass
    return _stdlib().loads(bytes(data) if isinstance(data, memoryview) else data)


class Encoder(object):
    """`json.JSONEncoder(ensure_ascii=..., default=...).encode`, with the default separators."""

    def __init__(self, ensure_ascii=True, default=None):
        self._ensure_ascii = ensure_ascii
        self._default = default
        self._fallback = None
        self._string = None
        if _json is not None:
            self._string = (_json.encode_basestring_ascii if ensure_ascii
                            else _json.encode_basestring)
            try:
                self._make({})
            except Exception:  # pragma: no cover - a CPython whose encoder wants something else
                self._string = None

    def _make(self, markers):
        # (markers, default, encoder, indent, key_separator, item_separator, sort_keys,
        #  skipkeys, allow_nan): what JSONEncoder.iterencode passes for json.dumps's defaults.
        return _json.make_encoder(markers, self._default, self._string, None, ": ", ", ",
                                  False, False, True)

    def encode(self, value):
        if self._string is None:
            if self._fallback is None:
                self._fallback = _stdlib().JSONEncoder(ensure_ascii=self._ensure_ascii,
                                                       default=self._default)
            return self._fallback.encode(value)
        if isinstance(value, str):
            return self._string(value)
        # A fresh markers dict per call, as JSONEncoder does: an encode that fails half-way
        # must not leave ids behind that a later call would mistake for a cycle.
        return "".join(self._make({})(value, 0))

