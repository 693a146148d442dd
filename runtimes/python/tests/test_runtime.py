"""End-to-end tests of the Python RIC: bootstrap.py runs as a subprocess against FakeRuntimeApi.

Run: python3 -m unittest discover -s runtimes/python/tests
"""
import json
import unittest

from fake_api import API, FakeRuntimeApi, RicProcess

APP = """
    import logging, os
    counter = 0

    def hello(event, context):
        return {"hello": event.get("name")}

    def count(event, context):
        global counter
        counter += 1
        return counter

    def ctx(event, context):
        return {
            "function_name": context.function_name,
            "function_version": context.function_version,
            "invoked_function_arn": context.invoked_function_arn,
            "memory_limit_in_mb": context.memory_limit_in_mb,
            "aws_request_id": context.aws_request_id,
            "log_group_name": context.log_group_name,
            "log_stream_name": context.log_stream_name,
            "remaining": context.get_remaining_time_in_millis(),
            "identity_id": context.identity.cognito_identity_id,
            "client_custom": context.client_context.custom if context.client_context else None,
            "client_app": context.client_context.client.app_title if context.client_context else None,
            "tenant_id": context.tenant_id,
            "trace": os.environ.get("_X_AMZN_TRACE_ID"),
        }

    def fail(event, context):
        raise ValueError("boom")

    def logs(event, context):
        print("printed line")
        logging.warning("warned %s", 1)
        logging.info("info line")
        return "ok"

    def unmarshalable(event, context):
        return {1, 2}

    def raw(event, context):
        return b"\\x00raw"
"""


class _RicCase(unittest.TestCase):
    def setUp(self):
        self.api = FakeRuntimeApi()
        self.procs = []

    def tearDown(self):
        for p in self.procs:
            p.stop()
        self.api.close()

    def start(self, handler, files=None, env=None):
        proc = RicProcess(self.api, handler, files if files is not None else {"app.py": APP}, env)
        self.procs.append(proc)
        return proc


class RicTestCase(_RicCase):
    def test_hello_response(self):
        self.start("app.hello")
        rid = self.api.add_event({"name": "nimbus"})
        post = self.api.wait_posts(1)[0]
        self.assertEqual(post["path"], API + "/invocation/%s/response" % rid)
        self.assertEqual(json.loads(post["body"]), {"hello": "nimbus"})
        self.assertEqual(post["headers"]["content-type"], "application/json")

    def test_context_fields_and_remaining_time(self):
        self.start("app.ctx")
        rid = self.api.add_event({}, headers={
            "Lambda-Runtime-Cognito-Identity": '{"cognitoIdentityId":"id-1","cognitoIdentityPoolId":"pool"}',
            "Lambda-Runtime-Client-Context": '{"custom":{"k":"v"},"client":{"app_title":"app"},"env":{}}',
        })
        got = json.loads(self.api.wait_posts(1)[0]["body"])
        self.assertEqual(got["function_name"], "fn")
        self.assertEqual(got["function_version"], "$LATEST")
        self.assertEqual(got["memory_limit_in_mb"], "256")  # a string, as in awslambdaric
        self.assertEqual(got["aws_request_id"], rid)
        self.assertEqual(got["invoked_function_arn"], "arn:aws:lambda:us-east-1:123456789012:function:fn")
        self.assertEqual(got["log_group_name"], "/aws/lambda/fn")
        self.assertTrue(got["log_stream_name"].startswith("2024/01/01/"))
        self.assertTrue(0 < got["remaining"] <= 10000, got["remaining"])
        self.assertEqual(got["identity_id"], "id-1")
        self.assertEqual(got["client_custom"], {"k": "v"})
        self.assertEqual(got["client_app"], "app")
        self.assertIsNone(got["tenant_id"])
        self.assertTrue(got["trace"].startswith("Root=1-5bef4de7"))

    def test_handler_exception_body(self):
        proc = self.start("app.fail")
        rid = self.api.add_event({})
        post = self.api.wait_posts(1)[0]
        self.assertEqual(post["path"], API + "/invocation/%s/error" % rid)
        body = json.loads(post["body"])
        self.assertEqual(sorted(body), ["errorMessage", "errorType", "requestId", "stackTrace"])
        self.assertEqual(body["errorType"], "ValueError")
        self.assertEqual(body["errorMessage"], "boom")
        self.assertEqual(body["requestId"], rid)
        self.assertEqual(len(body["stackTrace"]), 1)  # runtime frames are stripped
        self.assertIn('app.py", line', body["stackTrace"][0])
        self.assertIn('raise ValueError("boom")', body["stackTrace"][0])
        # lambda-compat §1.3: no Error-Type header on invoke errors, X-Ray cause instead.
        self.assertNotIn("lambda-runtime-function-error-type", post["headers"])
        xray = json.loads(post["headers"]["lambda-runtime-function-xray-error-cause"])
        self.assertEqual(xray["exceptions"][0]["type"], "ValueError")
        out = proc.stop()
        self.assertIn("[ERROR] ValueError: boom\rTraceback (most recent call last):\r", out)

    def test_warm_reuse_keeps_module_state(self):
        self.start("app.count")
        self.api.add_event({})
        self.api.add_event({})
        posts = self.api.wait_posts(2)
        self.assertEqual([json.loads(p["body"]) for p in posts], [1, 2])

    def test_nested_folder_handler(self):
        files = {"sub/dir/mod.py": "def handler(event, context):\n    return 'nested'\n"}
        self.start("sub/dir/mod.handler", files)
        self.api.add_event({})
        self.assertEqual(json.loads(self.api.wait_posts(1)[0]["body"]), "nested")

    def test_dotted_package_handler(self):
        files = {"pkg/__init__.py": "", "pkg/mod.py": "def handler(e, c):\n    return 'dotted'\n"}
        self.start("pkg.mod.handler", files)
        self.api.add_event({})
        self.assertEqual(json.loads(self.api.wait_posts(1)[0]["body"]), "dotted")

    def test_logging_lines_carry_request_id(self):
        proc = self.start("app.logs")
        rid = self.api.add_event({})
        self.api.wait_posts(1)
        out = proc.stop()
        self.assertIn("printed line\n", out)
        self.assertRegex(out, r"\[WARNING\]\t\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z\t%s\twarned 1\n" % rid)
        self.assertNotIn("info line", out)  # root level stays WARNING, as on AWS

    def test_log_level_env_enables_info(self):
        proc = self.start("app.logs", env={"AWS_LAMBDA_LOG_LEVEL": "INFO"})
        rid = self.api.add_event({})
        self.api.wait_posts(1)
        self.assertIn("[INFO]\t", proc.stop())
        self.assertIn("\t%s\tinfo line\n" % rid, proc.stdout)

    def test_json_log_format(self):
        proc = self.start("app.logs", env={"AWS_LAMBDA_LOG_FORMAT": "JSON"})
        rid = self.api.add_event({})
        self.api.wait_posts(1)
        records = [json.loads(l) for l in proc.stop().splitlines() if l.startswith("{")]
        self.assertEqual(records[0]["level"], "WARNING")
        self.assertEqual(records[0]["message"], "warned 1")
        self.assertEqual(records[0]["requestId"], rid)

    def test_unmarshal_and_marshal_errors(self):
        self.start("app.unmarshalable")
        self.api.add_event(None, raw=b"")
        self.api.add_event({})
        first, second = [json.loads(p["body"]) for p in self.api.wait_posts(2)]
        self.assertEqual(first["errorType"], "Runtime.UnmarshalError")
        self.assertTrue(first["errorMessage"].startswith("Unable to unmarshal input: Expecting value"))
        self.assertEqual(second["errorType"], "Runtime.MarshalError")
        self.assertIn("Unable to marshal response: Object of type set", second["errorMessage"])

    def test_reconnects_when_server_drops_idle_connection(self):
        self.api.drop_after_next = True
        self.start("app.count")
        for _ in range(3):
            self.api.add_event({})
        self.assertEqual([json.loads(p["body"]) for p in self.api.wait_posts(3)], [1, 2, 3])

    def test_chunked_and_large_events(self):
        self.api.chunked_next = True
        self.start("app.hello")
        big = "x" * (5 * 1024 * 1024)
        self.api.add_event({"name": big})
        self.api.add_event({"name": "small"})
        first, second = [json.loads(p["body"]) for p in self.api.wait_posts(2)]
        self.assertEqual(len(first["hello"]), len(big))
        self.assertEqual(second, {"hello": "small"})

    def test_bytes_response_passthrough(self):
        self.start("app.raw")
        self.api.add_event({})
        post = self.api.wait_posts(1)[0]
        self.assertEqual(post["body"], b"\x00raw")
        self.assertEqual(post["headers"]["content-type"], "application/unknown")

    def test_lazy_logging_gets_the_lambda_handler_when_first_imported(self):
        files = {"app.py": (
            "import sys\n"
            "def handler(event, context):\n"
            "    before = 'logging' in sys.modules\n"
            "    context.log('via context\\n')\n"
            "    import logging\n"
            "    logging.warning('late %s', 2)\n"
            "    return before\n")}
        proc = self.start("app.handler", files)
        rid = self.api.add_event({})
        self.assertEqual(json.loads(self.api.wait_posts(1)[0]["body"]), False)
        out = proc.stop()
        self.assertIn("via context\n", out)
        self.assertRegex(out, r"\[WARNING\]\t\S+Z\t%s\tlate 2\n" % rid)

    def test_runtime_itself_imports_no_heavy_modules(self):
        # A cold start pays for every import before the first event: the client keeps to
        # C accelerators and builtins (json, logging, re, traceback come only with user code).
        files = {"app.py": (
            "import sys\n"
            "def handler(event, context):\n"
            "    return sorted(m for m in ('json', 'logging', 're', 'traceback', 'encodings.idna',\n"
            "                              'socket', 'http.client') if m in sys.modules)\n")}
        self.start("app.handler", files)
        self.api.add_event({"unicode": "\u00e9"})
        self.assertEqual(json.loads(self.api.wait_posts(1)[0]["body"]), [])


class JsonIoTest(unittest.TestCase):
    """The runtime's JSON on `_json` must produce exactly what the `json` module does."""

    SAMPLES = [
        {}, [], "", "text", "\u00e9\u2028\U0001f600", 0, -1, 2 ** 70, 1.5, 1e300, float("inf"),
        float("-inf"), True, None, {"a": [1, 2.25, None, False, {"b": "c\"d\\e\n"}]},
        {"k\u00fc": ["\x00\x1f", (1, 2)]}, {1: "int key", 2.5: "float key", None: "none"},
    ]

    def test_encoder_matches_json_dumps(self):
        sys_path_insert()
        from nimbus_ric import jsonio
        for ensure_ascii in (True, False):
            encoder = jsonio.Encoder(ensure_ascii=ensure_ascii)
            for value in self.SAMPLES:
                self.assertEqual(encoder.encode(value), json.dumps(value, ensure_ascii=ensure_ascii))

    def test_encoder_default_and_failures(self):
        sys_path_insert()
        from nimbus_ric import jsonio
        self.assertEqual(jsonio.Encoder(default=str).encode({"s": {1}}), json.dumps({"s": "{1}"}))
        encoder = jsonio.Encoder()
        shared = [1]
        with self.assertRaises(TypeError):
            encoder.encode({"ok": shared, "bad": object()})
        # A failed call leaves nothing behind that a later one would take for a cycle.
        self.assertEqual(encoder.encode({"ok": shared}), '{"ok": [1]}')
        loop = []
        loop.append(loop)
        with self.assertRaises(ValueError):
            encoder.encode(loop)

    def test_loads_matches_json_loads(self):
        sys_path_insert()
        from nimbus_ric import jsonio
        for value in self.SAMPLES[:-1]:
            text = json.dumps(value)
            for data in (text, " \n" + text + "\t ", text.encode(), memoryview(text.encode())):
                self.assertEqual(jsonio.loads(data), json.loads(text))
        self.assertEqual(jsonio.loads('"\u00e9"'.encode("utf-16")), "\u00e9")  # json detects it
        for bad in ("", "{", "[1,]", "1 2", "\ufeff{}", b"\xff"):
            with self.assertRaises(ValueError) as got:
                jsonio.loads(bad)
            with self.assertRaises(ValueError) as want:
                json.loads(bad)
            self.assertEqual(str(got.exception), str(want.exception))
        nan = jsonio.loads("NaN")
        self.assertNotEqual(nan, nan)


def sys_path_insert():
    import os
    import sys
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    if root not in sys.path:
        sys.path.insert(0, root)


class InitErrorTest(_RicCase):
    def assert_init_error(self, handler, files, error_type, message_part):
        proc = self.start(handler, files)
        self.assertEqual(proc.wait_exit(), 1)
        post = self.api.wait_posts(1)[0]
        self.assertEqual(post["path"], API + "/init/error")
        self.assertEqual(post["headers"]["lambda-runtime-function-error-type"], error_type)
        body = json.loads(post["body"])
        self.assertEqual(body["errorType"], error_type)
        self.assertEqual(body["requestId"], "")
        self.assertIsInstance(body["stackTrace"], list)
        self.assertIn(message_part, body["errorMessage"])
        self.assertIn("[ERROR] " + error_type, proc.stdout)
        return body

    def test_malformed_handler_name(self):
        self.assert_init_error("nodot", {}, "Runtime.MalformedHandlerName", "Bad handler 'nodot'")

    def test_missing_module(self):
        self.assert_init_error("missing.handler", {}, "Runtime.ImportModuleError",
                               "Unable to import module 'missing': No module named 'missing'")

    def test_import_error_inside_module(self):
        self.assert_init_error("app.handler", {"app.py": "import not_there_xyz\n"},
                               "Runtime.ImportModuleError",
                               "Unable to import module 'app': No module named 'not_there_xyz'")

    def test_syntax_error(self):
        body = self.assert_init_error("app.handler", {"app.py": "def handler(:\n"},
                                      "Runtime.UserCodeSyntaxError", "Syntax error in module 'app'")
        self.assertIn("app.py\" Line 1", body["stackTrace"][0])

    def test_handler_not_found(self):
        self.assert_init_error("app.nope", {"app.py": "x = 1\n"}, "Runtime.HandlerNotFound",
                               "Handler 'nope' missing on module 'app'")

    def test_builtin_module_conflict(self):
        self.assert_init_error("sys.handler", {}, "Runtime.BuiltInModuleConflict",
                               "Cannot use built-in module sys as a handler module")

    def test_exception_during_module_init_keeps_its_type(self):
        body = self.assert_init_error("app.handler", {"app.py": "raise KeyError('cfg')\n"},
                                      "KeyError", "'cfg'")
        self.assertIn("app.py", body["stackTrace"][0])


if __name__ == "__main__":
    unittest.main()
