"""A TCP proxy that can be cut and restored: a dependency that becomes unreachable.

``cut()`` closes the listening socket and every connection through it, so new connections
are refused (as to a host whose service is down) and calls under way fail at once;
``restore()`` listens again on the same port.
"""

from __future__ import annotations

import contextlib
import selectors
import socket
import threading

BUFFER = 65536


class TcpProxy:
    def __init__(self, target_host: str, target_port: int, host: str = "127.0.0.1"):
        self.target = (target_host, target_port)
        self.host = host
        self._listener = self._listen(0)
        self.port = self._listener.getsockname()[1]
        self._lock = threading.Lock()
        self._pairs: set[tuple[socket.socket, socket.socket]] = set()
        self._stopped = threading.Event()
        self._accepting = threading.Thread(target=self._accept_loop, daemon=True)
        self._accepting.start()

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    def _listen(self, port: int) -> socket.socket:
        listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        listener.bind((self.host, port))
        listener.listen(128)
        listener.setblocking(False)
        return listener

    def _accept_loop(self) -> None:
        while not self._stopped.is_set():
            with self._lock:
                listener = self._listener
            if listener is None:
                self._stopped.wait(0.05)
                continue
            with selectors.DefaultSelector() as sel:
                try:
                    sel.register(listener, selectors.EVENT_READ)
                except (ValueError, OSError):  # closed by cut() meanwhile
                    continue
                if not sel.select(0.1):
                    continue
            try:
                downstream, _ = listener.accept()
            except OSError:
                continue
            downstream.setblocking(True)
            try:
                upstream = socket.create_connection(self.target, timeout=5)
            except OSError:
                downstream.close()
                continue
            pair = (downstream, upstream)
            with self._lock:
                if self._listener is None:  # cut while we were connecting
                    downstream.close()
                    upstream.close()
                    continue
                self._pairs.add(pair)
            threading.Thread(target=self._pump, args=(pair,), daemon=True).start()

    def _pump(self, pair: tuple[socket.socket, socket.socket]) -> None:
        downstream, upstream = pair
        peer = {downstream: upstream, upstream: downstream}
        try:
            with selectors.DefaultSelector() as sel:
                sel.register(downstream, selectors.EVENT_READ)
                sel.register(upstream, selectors.EVENT_READ)
                while not self._stopped.is_set():
                    with self._lock:
                        if pair not in self._pairs:
                            return
                    for key, _ in sel.select(0.1):
                        data = key.fileobj.recv(BUFFER)
                        if not data:
                            return
                        peer[key.fileobj].sendall(data)
        except OSError:
            pass
        finally:
            self._drop(pair)

    def _drop(self, pair) -> None:
        with self._lock:
            self._pairs.discard(pair)
        for s in pair:
            with contextlib.suppress(OSError):
                s.shutdown(socket.SHUT_RDWR)
            s.close()

    def cut(self) -> None:
        """Refuse new connections and break the ones open."""
        with self._lock:
            listener, self._listener = self._listener, None
            pairs, self._pairs = list(self._pairs), set()
        if listener is not None:
            listener.close()
        for pair in pairs:
            self._drop(pair)

    def restore(self) -> None:
        with self._lock:
            if self._listener is None:
                self._listener = self._listen(self.port)

    def close(self) -> None:
        self._stopped.set()
        self.cut()
        self._accepting.join(2)
