"""redis-py (from PyPI) against a running engine: what a Python application does.

Usage: redis_py_check.py PORT [CA]. With CA (a PEM file), over TLS (ssl=True), believing
the engine's certificate only if that CA signed it and it names 127.0.0.1. Exits 0 and prints "ok" when every check holds; any failed
check raises (a traceback, exit status 1). Driven by tests/tests/redis_clients.rs.
"""

import sys

import redis
from redis.exceptions import ResponseError

ca = sys.argv[2] if len(sys.argv) > 2 else None
tls = {"ssl": True, "ssl_ca_certs": ca, "ssl_cert_reqs": "required", "ssl_check_hostname": True} if ca else {}
r = redis.Redis(host="127.0.0.1", port=int(sys.argv[1]), decode_responses=True, socket_timeout=10, **tls)
assert r.ping()
r.flushdb()

# The default pipeline() is a MULTI/EXEC transaction.
pipe = r.pipeline()
pipe.set("py:1", "a").incr("py:n").get("py:1")
assert pipe.execute() == [True, 1, "a"], "pipeline transaction"

# A transaction with a command refused while queuing applies nothing, and says so.
pipe = r.pipeline()
pipe.set("py:2", "b")
pipe.execute_command("NOSUCHCOMMAND", "x")
pipe.set("py:3", "c")
try:
    pipe.execute()
    raise AssertionError("a transaction with an unknown command must fail")
except ResponseError as e:
    assert "unknown command" in str(e) or "EXECABORT" in str(e), str(e)
assert r.get("py:2") is None and r.get("py:3") is None, "a failed transaction applied writes"

# An error while running is reported for that command; the others commit (as in Redis).
pipe = r.pipeline()
pipe.set("py:4", "d").execute_command("NAMESPACE", "NOSUCH").set("py:5", "e")
replies = pipe.execute(raise_on_error=False)
assert replies[0] is True and replies[2] is True, replies
assert isinstance(replies[1], ResponseError) and "NOSUCH" in str(replies[1]), replies
assert r.get("py:4") == "d" and r.get("py:5") == "e"

# WATCH is refused before anything is queued; nothing changes.
with r.pipeline() as p:
    try:
        p.watch("py:1")
        raise AssertionError("WATCH must be refused")
    except ResponseError as e:
        assert "WATCH is not supported" in str(e), str(e)
assert r.get("py:1") == "a"

# SCAN iteration: every key once, each name usable in GET.
with r.pipeline(transaction=False) as p:
    for i in range(250):
        p.set(f"scan:{i}", i)
    p.execute()
names = list(r.scan_iter(match="scan:*", count=17))
assert len(names) == 250 and sorted(names) == sorted(f"scan:{i}" for i in range(250)), names[:5]
assert names == sorted(names, key=lambda n: int(n.split(":")[1])), "collation order: numbers numerically"
assert all(r.get(n) == n.split(":")[1] for n in names)
assert r.dbsize() == 250 + 4
assert sorted(r.keys("py:*")) == ["py:1", "py:4", "py:5", "py:n"]

# String commands.
assert r.mset({"m:1": "x", "m:2": "y"}) is True and r.mget("m:1", "m:2", "m:3") == ["x", "y", None]
assert r.setnx("m:1", "z") is False and r.set("m:3", "z", nx=True) is True
assert r.set("m:3", "w", xx=True, get=True) == "z"
assert r.getdel("m:3") == "w" and r.exists("m:1", "m:3") == 1 and r.type("m:1") == "string"
assert r.append("m:1", "yz") == 3 and r.strlen("m:1") == 3 and r.decr("py:n") == 0
try:
    r.set("m:1", "v", ex=10)
    raise AssertionError("SET EX must be refused")
except ResponseError as e:
    assert "not supported" in str(e), str(e)
assert r.get("m:1") == "xyz"
print("ok")
