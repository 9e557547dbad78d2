"""Reading one HTTP request off a trio stream with h11, for the client tests' servers.

Rules: returns the request head and its whole body once h11 reports EndOfMessage; None
when the peer closed the connection (or h11 reports anything else before the end).
"""

from __future__ import annotations

import h11
import trio


async def read_request(
    conn: h11.Connection, stream: trio.SocketStream
) -> tuple[h11.Request, bytes] | None:
    """The next request on `conn`: (head, body), or None if the connection ended first."""
    head: h11.Request | None = None
    body = b""
    while True:
        event = conn.next_event()
        if event is h11.NEED_DATA:
            data = await stream.receive_some(65536)
            if not data:
                return None
            conn.receive_data(data)
        elif isinstance(event, h11.Request):
            head = event
        elif isinstance(event, h11.Data):
            body += event.data
        elif isinstance(event, h11.EndOfMessage) and head is not None:
            return head, body
        else:
            return None
