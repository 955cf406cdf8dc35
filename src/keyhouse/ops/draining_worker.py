"""gunicorn's gthread worker, except that SIGTERM does not reset the connections it queued.

On SIGTERM a gthread worker stops accepting and finishes the requests it has,
but the connections the kernel already accepted for it (the listen backlog:
the client has sent its request and waits) stay there until the worker closes
its listening socket after the last request, up to ``graceful_timeout`` later,
and the kernel then resets them: in tests/e2e/test_sigterm.py, 17 and 39
connections per run were reset after the client had sent its request
(docs/deploy.md, "SIGTERM"); with this worker, none.

Here the worker, as it stops accepting, takes every connection already waiting
and serves it like the others, then closes its listening socket at once, so
that a client connecting later is refused (which it, or a load balancer,
retries elsewhere) instead of queued and reset. Hand-written because gunicorn
has no option for it; it relies only on ``set_accept_enabled``, ``accept`` and
``sockets`` of gunicorn's ThreadWorker.
"""

from __future__ import annotations

from gunicorn.workers.gthread import ThreadWorker

# Enough for any backlog (the kernel's somaxconn is 4096 by default); a bound so
# that a flood of connections cannot keep a stopping worker accepting forever.
MAX_DRAINED = 8192


class DrainingThreadWorker(ThreadWorker):
    def set_accept_enabled(self, enabled: bool) -> None:
        stopping = not enabled and not self.alive and self._accepting
        super().set_accept_enabled(enabled)
        if stopping:
            self._drain_backlog()

    def _drain_backlog(self) -> None:
        drained = 0
        for listener in self.sockets:
            listener.setblocking(False)
            while drained < MAX_DRAINED:
                before = self.nr_conns
                self.accept(listener)  # gunicorn's: accept and queue, or nothing (EAGAIN)
                if self.nr_conns == before:
                    break
                drained += 1
            listener.close()  # the kernel queues nothing more for this process
        if drained:
            self.log.info("Serving %d connection(s) that were waiting at shutdown", drained)
