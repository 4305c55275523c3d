"""A stand-in for DuckDuckGo's image search on 127.0.0.1, reached as an HTTPS proxy.

ddgs's engines call fixed https:// addresses, so the test points their HTTP client (primp) at
this server as a proxy: it answers CONNECT, ends the TLS itself with a certificate for
duckduckgo.com signed by a throwaway CA (which the client is told to trust), and serves what the
real site does: the search page carrying the `vqd` token, and `i.js` pages of JSON results,
100 a page, paged by `s`. A query can be made to answer 429/403 for a while, or find nothing.
"""

from __future__ import annotations

import contextlib
import json
import socket
import ssl
import subprocess
import threading
from collections import Counter
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

from helpers.collect.sources import ImageSearchSource

PAGE = 100  # results per i.js page, as DuckDuckGo serves them
HOSTS = ("duckduckgo.com",)


def make_certificates(folder: Path) -> tuple[Path, Path, Path]:
    """Write a test CA and a duckduckgo.com certificate it signs; return (ca, cert, key)."""
    ca, ca_key = folder / "ca.pem", folder / "ca.key"
    cert, key, csr, ext = (folder / n for n in ("site.pem", "site.key", "site.csr", "site.ext"))
    ext.write_text(
        f"subjectAltName={','.join(f'DNS:{h}' for h in HOSTS)}\n"
        "basicConstraints=CA:FALSE\nextendedKeyUsage=serverAuth\n"
    )
    commands = [
        ["req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", ca_key, "-out", ca,
         "-days", "2", "-subj", "/CN=doggo test CA",
         "-addext", "basicConstraints=critical,CA:TRUE",
         "-addext", "keyUsage=critical,keyCertSign"],
        ["req", "-newkey", "rsa:2048", "-nodes", "-keyout", key, "-out", csr,
         "-subj", f"/CN={HOSTS[0]}"],
        ["x509", "-req", "-in", csr, "-CA", ca, "-CAkey", ca_key, "-CAcreateserial",
         "-out", cert, "-days", "2", "-extfile", ext],
    ]  # fmt: skip
    for args in commands:
        subprocess.run(["openssl", *map(str, args)], check=True, capture_output=True)
    return ca, cert, key


class SearchServer:
    """Serves image results per query; counts every request as (path, query, offset)."""

    def __init__(self, folder: Path) -> None:
        self.ca, cert, key = make_certificates(folder)
        self.tls = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        self.tls.load_cert_chain(cert, key)
        self.tls.set_alpn_protocols(["http/1.1"])
        self.results: dict[str, list[dict[str, str]]] = {}
        self.refusals: dict[str, tuple[int, int]] = {}  # query -> (status, i.js hits refused)
        self.requests: list[tuple[str, str, int]] = []
        self.hits: Counter[str] = Counter()  # i.js hits per query
        self._lock = threading.Lock()
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), _ProxyHandler)
        self._server.daemon_threads = True
        self._server.owner = self  # type: ignore[attr-defined]
        self._thread = threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )

    def __enter__(self) -> SearchServer:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._server.shutdown()
        self._server.server_close()

    @property
    def proxy(self) -> str:
        return f"http://127.0.0.1:{self._server.server_address[1]}"

    def source(self, **options: object) -> ImageSearchSource:
        """Return an image search source that reaches this server, with short waits."""
        settings: dict = {"backoff": 0.01, "retries": 2, **options}
        return ImageSearchSource(proxy=self.proxy, verify=str(self.ca), **settings)

    def serve(self, query: str, image_urls: list[str]) -> None:
        """Answer `query` with these image URLs, in this order, 100 a page."""
        self.results[query] = [
            {"title": f"{query} photo {i}", "image": url, "thumbnail": url, "url": url,
             "height": "480", "width": "640", "source": "Bing"}
            for i, url in enumerate(image_urls)
        ]  # fmt: skip

    def refuse(self, query: str, status: int, times: int) -> None:
        """Answer the next `times` result requests for `query` with `status` (429, 403); 0 ends
        a refusal."""
        self.refusals[query] = (status, self.hits[query] + times)

    def answer(self, path: str, params: dict[str, str]) -> tuple[int, str, bytes]:
        """Return (status, content type, body) for a request to duckduckgo.com."""
        query = params.get("q", "")
        if path == "/":  # the search page: the token i.js wants is in its scripts
            page = f'<html><script>vqd="4-{abs(hash(query)) % 10**12}";</script></html>'
            return 200, "text/html", page.encode()
        if path != "/i.js" or not params.get("vqd", "").startswith("4-"):
            return 404, "text/html", b"not found"
        offset = int(params.get("s", "0"))
        with self._lock:
            self.hits[query] += 1
            self.requests.append((path, query, offset))
            status, until = self.refusals.get(query, (200, 0))
            refused = self.hits[query] <= until
        if refused:
            return status, "text/html", b"<html>Too many requests</html>"
        found = self.results.get(query, [])
        body: dict[str, object] = {
            "query": query,
            "results": found[offset : offset + PAGE],
            "vqd": {query: params["vqd"]},
        }
        if offset + PAGE < len(found):
            body["next"] = f"i.js?q={query}&o=json&s={offset + PAGE}"
        return 200, "application/json", json.dumps(body).encode()


class _ProxyHandler(BaseHTTPRequestHandler):
    """Takes CONNECT to a known host, then serves HTTP over the TLS it ends itself."""

    def do_CONNECT(self) -> None:  # noqa: N802 (the name http.server dispatches to)
        owner: SearchServer = self.server.owner  # type: ignore[attr-defined]
        if self.path.split(":")[0] not in HOSTS:
            self.send_error(403, "this test proxy serves only the search engine")
            return
        self.send_response(200, "Connection established")
        self.end_headers()
        self.wfile.flush()
        with contextlib.suppress(OSError, ssl.SSLError):
            tls = owner.tls.wrap_socket(self.connection, server_side=True)
            _SiteHandler(tls, self.client_address, self.server)
        self.close_connection = True

    def log_message(self, format: str, *args: object) -> None:  # noqa: A002
        pass


class _SiteHandler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # the client keeps the tunnel open for several requests

    def do_GET(self) -> None:  # noqa: N802
        owner: SearchServer = self.server.owner  # type: ignore[attr-defined]
        url = urlsplit(self.path)
        params = {k: v[0] for k, v in parse_qs(url.query).items()}
        status, content_type, body = owner.answer(url.path, params)
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        with contextlib.suppress(OSError):
            self.wfile.write(body)

    def finish(self) -> None:
        with contextlib.suppress(OSError):
            super().finish()
            self.connection.shutdown(socket.SHUT_RDWR)

    def log_message(self, format: str, *args: object) -> None:  # noqa: A002
        pass
