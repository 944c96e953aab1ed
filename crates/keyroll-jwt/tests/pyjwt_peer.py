"""PyJWT peer for keyroll-jwt's interop tests.

argv[1] is a JSON list of operations; stdout is a JSON list of results, one per
operation: {"ok": value} or {"error": exception class name, "message": str}.
  {"op": "encode", "key": str, "claims": {...}, "alg": "HS256", "kid": str|null}
  {"op": "decode", "keys": {kid: key}, "token": str, "audience"?, "issuer"?}
    picks the key by the token's kid, as a PyJWT service with rotated keys does.
"""
import json
import sys

import jwt

assert jwt.__version__ == "2.10.1", jwt.__version__


def run(op):
    if op["op"] == "encode":
        headers = {"kid": op["kid"]} if op.get("kid") is not None else None
        return jwt.encode(op["claims"], op["key"], algorithm=op.get("alg", "HS256"), headers=headers)
    if op["op"] == "decode":
        kid = jwt.get_unverified_header(op["token"]).get("kid")
        key = op["keys"][kid]
        options = {k: op[k] for k in ("audience", "issuer") if k in op}
        return jwt.decode(op["token"], key, algorithms=["HS256", "HS384", "HS512"], **options)
    raise ValueError("unknown operation %r" % op["op"])


results = []
for op in json.loads(sys.argv[1]):
    try:
        results.append({"ok": run(op)})
    except Exception as error:  # reported to the Rust side, which asserts on it
        results.append({"error": type(error).__name__, "message": str(error)})
print(json.dumps(results))
