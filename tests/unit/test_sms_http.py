"""The vendors' HTTP client on 127.0.0.1: pooled connections, no redirects, a capped reply."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest
from pytest_socket import enable_socket, socket_allow_hosts

from otp_core.sms import http
from otp_core.sms.http import MAX_REPLY_BYTES, post


class Server:
    """A keep-alive HTTP/1.1 server that counts connections and answers each POST with ``reply``."""

    def __init__(self) -> None:
        self.connections = 0
        self.paths: list[str] = []
        self.reply: tuple[int, dict[str, str], bytes] = (200, {}, b"{}")
        server = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def setup(self) -> None:
                server.connections += 1
                super().setup()

            def do_POST(self) -> None:
                self.rfile.read(int(self.headers.get("Content-Length") or 0))
                server.paths.append(self.path)
                status, headers, body = server.reply
                self.send_response(status)
                for name, value in {**headers, "Content-Length": str(len(body))}.items():
                    self.send_header(name, value)
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, format: str, *args: Any) -> None:
                return

        self._httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._httpd.daemon_threads = True
        threading.Thread(target=self._httpd.serve_forever, daemon=True).start()
        self.url = f"http://127.0.0.1:{self._httpd.server_address[1]}"

    def stop(self) -> None:
        self._httpd.shutdown()
        self._httpd.server_close()


@pytest.fixture
def server(_no_network: None) -> Iterator[Server]:
    enable_socket()
    socket_allow_hosts(["127.0.0.1"], allow_unix_socket=True)
    running = Server()
    yield running
    running.stop()


def send(url: str) -> http.HttpReply:
    return post(url, body=b"{}", headers={"Content-Type": "application/json"}, timeout=2.0)


def test_sends_to_one_vendor_share_one_connection(server: Server) -> None:
    # When three messages go to the same vendor in a burst
    replies = [send(f"{server.url}/messages") for _ in range(3)]

    # Then each got its answer over the one connection the pool kept alive
    assert [reply.status for reply in replies] == [200, 200, 200]
    assert server.connections == 1


def test_an_idle_origin_starts_a_new_connection(server: Server, monkeypatch: pytest.MonkeyPatch) -> None:
    # Given a connection used once
    send(f"{server.url}/messages")
    used_at = http._LAST_USED[server.url]

    # When the next send comes after the idle limit (the vendor may have closed the connection meanwhile)
    monkeypatch.setattr(http.time, "time", lambda: used_at + http.IDLE_REUSE_SECONDS + 1)
    send(f"{server.url}/messages")

    # Then it did not risk the old connection
    assert server.connections == 2


def test_a_redirect_is_an_answer_not_followed(server: Server) -> None:
    # Given a vendor answering 302 to somewhere else
    server.reply = (302, {"Location": f"{server.url}/elsewhere"}, b"")

    # When sending, then the 3xx comes back and nothing was resent to the new location
    assert send(f"{server.url}/messages").status == 302
    assert server.paths == ["/messages"]


def test_an_oversized_reply_is_cut_and_its_connection_not_reused(server: Server) -> None:
    server.reply = (200, {}, b"x" * (MAX_REPLY_BYTES + 10))

    assert len(send(f"{server.url}/messages").body) == MAX_REPLY_BYTES
    server.reply = (200, {}, b"{}")
    assert send(f"{server.url}/messages").json() == {}
    # The unread rest of the first answer must not be read as the second one: a new connection served it
    assert server.connections == 2
