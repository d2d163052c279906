"""The bare floor: a plain ASGI callable (no framework) that answers GET /clients/{id}/score with a fixed JSON
body of the API's shape, and GET /readyz. Served by the same uvicorn as the API and the Litestar floor and
loaded by the same wrk in the same run, it shows what the server and the protocol alone cost.
Run: uvicorn benchmarks.floor_bare:app
"""

from __future__ import annotations

PREFIX = "/clients/"
SUFFIX = "/score"
HEADERS = [(b"content-type", b"application/json")]
NOT_FOUND = b'{"status_code":404,"detail":"Not Found"}'


async def app(scope, receive, send) -> None:
    if scope["type"] == "lifespan":
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                await send({"type": "lifespan.shutdown.complete"})
                return
    path = scope["path"]
    status, body = 404, NOT_FOUND
    if path == "/readyz":
        status, body = 200, b'{"status":"ready"}'
    elif path.startswith(PREFIX) and path.endswith(SUFFIX) and path[len(PREFIX) : -len(SUFFIX)].isdigit():
        client_id = path[len(PREFIX) : -len(SUFFIX)]
        status, body = 200, b'{"client_id":' + client_id.encode() + b',"probability":0.1,"decision":"accept"}'
    await send({"type": "http.response.start", "status": status, "headers": HEADERS})
    await send({"type": "http.response.body", "body": body})
