"""A loopback TCP server that answers each HTTP request with scripted bytes.

For `client.http`'s tests: requests are read with h11 (so the client's bytes are checked
by a real parser), answers are whatever raw bytes a test scripts, sent in the pieces it
gives (to split a chunked body across writes), after which the server may close the
connection or stop answering. It counts the connections it accepted.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import h11
import trio
import trio.lowlevel

from tests.client.h11_reading import read_request


@dataclass
class Answer:
    """What the server does with one request.

    Attributes:
        pieces: raw bytes to send, one write each.
        close: close the connection after sending them.
        hang: send nothing further and keep the connection open until the test ends.
    """

    pieces: list[bytes] = field(default_factory=list)
    close: bool = False
    hang: bool = False


def ok(body: bytes = b"ok", *extra_headers: str) -> Answer:
    """A 200 with a Content-Length body."""
    head = "HTTP/1.1 200 OK\r\n" + "".join(f"{h}\r\n" for h in extra_headers)
    return Answer([f"{head}Content-Length: {len(body)}\r\n\r\n".encode() + body])


@dataclass
class ScriptedServer:
    """Answers the n-th request (over all connections) with `script(n, request)`."""

    script: Callable[[int, h11.Request, bytes], Answer]
    port: int = 0
    accepted: int = 0
    requests: list[tuple[h11.Request, bytes]] = field(default_factory=list)
    closed: trio.Event = field(default_factory=trio.Event)  # set when the server closed one

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    async def serve(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        listeners = await trio.open_tcp_listeners(0, host="127.0.0.1")
        self.port = listeners[0].socket.getsockname()[1]
        task_status.started()
        await trio.serve_listeners(self._connection, listeners)

    async def _connection(self, stream: trio.SocketStream) -> None:
        self.accepted += 1
        conn = h11.Connection(h11.SERVER)
        try:
            while True:
                read = await read_request(conn, stream)
                if read is None:
                    return
                head, body = read
                self.requests.append((head, body))
                answer = self.script(len(self.requests) - 1, head, body)
                for piece in answer.pieces:
                    await stream.send_all(piece)
                    await trio.lowlevel.checkpoint()  # let the client read each piece on its own
                if answer.hang:
                    await trio.sleep_forever()
                if answer.close:
                    await stream.aclose()
                    self.closed.set()
                    return
                # The answer bytes are not run through h11: start a fresh cycle by hand.
                conn = h11.Connection(h11.SERVER)
        except (trio.BrokenResourceError, trio.ClosedResourceError, h11.ProtocolError):
            return
