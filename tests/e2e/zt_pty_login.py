#!/usr/bin/env python3
"""Drive zulip-term's first-run login on a pseudo-terminal (stdlib only).

usage: zt_pty_login.py [--transcript FILE] [--timeout SECONDS]
                       ZULIP_TERM URL ZULIPRC LOGIN PASSWORD [LOGIN PASSWORD ...]

Each LOGIN PASSWORD pair is one attempt; every attempt but the last must be refused
("Incorrect Email(or Username) or Password!") and the last must succeed ("Generated
API key saved at"). Exit 0 iff that whole dialogue happened, 1 otherwise, 2 on bad usage.

Why a pty and not a pipe: with a controlling terminal getpass reads /dev/tty without
echo, exactly as for a person. Why so defensive: zulip-term 0.7.0 hangs on its
"Loading" spinner when PYTEST_* variables are in its environment and loops forever
once its input runs out, so the child gets a cleaned environment and is always
killed (its whole process group) before this script exits, within --timeout.
Adapted from Appendix C of shared/reference/zulip-clients.md.
"""

from __future__ import annotations

import argparse
import errno
import fcntl
import os
import pty
import re
import select
import signal
import struct
import sys
import termios
import time
from collections.abc import Sequence
from pathlib import Path

ANSI = re.compile(rb"\x1b\[[0-9;?]*[A-Za-z]|\x1b[()][A-Za-z0-9]|\r")
URL_PROMPT = r"Zulip (server )?URL: "
LOGIN_PROMPT = r"(Email|Username)[^:\n]*: "
PASSWORD_PROMPT = r"Password: "
REFUSED = r"Incorrect Email\(or Username\) or Password!"
SAVED = r"Generated API key saved at"
# Any of these means the dialogue went off the rails: stop waiting at once.
FATAL = r"Invalid Credentials, Please try again!|Zulip Terminal has crashed!"
# What 0.7.0 prints once it has logged in and the server lacks /register, /messages.
AFTER_LOGIN = r"Error connecting to Zulip server[^\n]*\n"


class DialogueError(Exception):
    """zulip-term did not say what the login dialogue should have made it say."""


def child_env() -> dict[str, str]:
    """The caller's environment without pytest's variables (they hang zulip-term 0.7.0)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("PYTEST_")}
    env.setdefault("TERM", "xterm")
    return env


class PtySession:
    """A child process on a pty, read into a buffer with ANSI escapes removed."""

    def __init__(self, argv: Sequence[str], cwd: str, deadline: float, echo_to: Path | None):
        self.deadline = deadline
        self.text = ""  # everything read so far, escapes stripped
        self.pos = 0  # how far expect() has consumed self.text
        self.transcript = echo_to.open("w", encoding="utf-8") if echo_to else None
        env = child_env()
        pid, fd = pty.fork()
        if pid == 0:  # child: session leader with the pty as controlling terminal
            try:
                os.chdir(cwd)  # zulip-term writes its traceback log to the CWD
                os.execve(argv[0], list(argv), env)
            except BaseException as exc:  # noqa: BLE001 - report, then never return
                os.write(2, f"zt_pty_login: cannot run {argv[0]}: {exc}\n".encode())
            os._exit(127)
        self.pid, self.fd = pid, fd
        # A roomy window, in case zulip-term gets as far as drawing its UI.
        fcntl.ioctl(fd, termios.TIOCSWINSZ, struct.pack("HHHH", 50, 200, 0, 0))
        self.eof = False

    def _read_some(self, wait: float) -> None:
        if self.eof:
            time.sleep(min(wait, 0.05))
            return
        ready, _, _ = select.select([self.fd], [], [], wait)
        if not ready:
            return
        try:
            chunk = os.read(self.fd, 65536)
        except OSError as exc:  # EIO: the child exited and the pty closed
            if exc.errno != errno.EIO:
                raise
            chunk = b""
        if not chunk:
            self.eof = True
            return
        text = ANSI.sub(b"", chunk).decode("utf-8", "replace")
        self.text += text
        if self.transcript:
            self.transcript.write(text)
            self.transcript.flush()

    def expect(self, pattern: str, timeout: float, what: str) -> str:
        """Wait for ``pattern`` after what was already matched; fail fast on FATAL."""
        start = time.monotonic()
        end = min(start + timeout, self.deadline)
        wanted, fatal = re.compile(pattern), re.compile(FATAL)
        while True:
            rest = self.text[self.pos :]
            match = wanted.search(rest)
            if match:
                self.pos += match.end()
                return match.group(0)
            bad = fatal.search(rest)
            if bad:
                raise DialogueError(f"waiting for {what}, zulip-term said {bad.group(0)!r}")
            if self.eof:
                raise DialogueError(f"zulip-term exited while waiting for {what}")
            now = time.monotonic()
            if now >= end:
                waited = now - start
                raise DialogueError(f"timed out after {waited:.0f}s waiting for {what}")
            self._read_some(min(0.2, end - now))

    def send_line(self, text: str) -> None:
        os.write(self.fd, text.encode() + b"\r")

    def close(self) -> int | None:
        """Kill the child's process group (TERM, then KILL) and reap it; never blocks long."""
        status: int | None = None
        for sig, grace in ((signal.SIGTERM, 3.0), (signal.SIGKILL, 3.0)):
            try:
                os.killpg(self.pid, sig)
            except ProcessLookupError:
                pass
            end = time.monotonic() + grace
            while time.monotonic() < end:
                self._read_some(0.05)  # keep draining so the child never blocks on output
                done, raw = os.waitpid(self.pid, os.WNOHANG)
                if done:
                    status = os.waitstatus_to_exitcode(raw)
                    break
            if status is not None:
                break
        os.close(self.fd)
        if self.transcript:
            self.transcript.close()
        return status


def run(args: argparse.Namespace) -> int:
    attempts = list(zip(args.credentials[::2], args.credentials[1::2], strict=True))
    rc = Path(args.zuliprc).resolve()
    deadline = time.monotonic() + args.timeout
    transcript = Path(args.transcript) if args.transcript else None
    session = PtySession([args.zulip_term, "-c", str(rc)], str(rc.parent), deadline, transcript)
    try:
        session.expect(URL_PROMPT, 20, "the URL prompt")
        session.send_line(args.url)
        for number, (login, password) in enumerate(attempts, start=1):
            last = number == len(attempts)  # only the last attempt should succeed
            session.expect(LOGIN_PROMPT, 20, f"the login prompt (attempt {number})")
            session.send_line(login)
            session.expect(PASSWORD_PROMPT, 20, f"the password prompt (attempt {number})")
            session.send_line(password)
            outcome = session.expect(f"{REFUSED}|{SAVED}", 20, f"the answer to attempt {number}")
            accepted = re.fullmatch(SAVED, outcome) is not None
            if accepted != last:
                verdict = "accepted" if accepted else "refused"
                raise DialogueError(f"attempt {number} of {len(attempts)} was {verdict}")
        # Let it go on to its first API calls with the new key; stop it there (with a
        # server implementing /register and /messages it would open the full UI).
        try:
            session.expect(AFTER_LOGIN, 10, "the first API calls")
        except DialogueError as exc:
            print(f"zt_pty_login: note: {exc}", file=sys.stderr)
        print("zt_pty_login: ok", file=sys.stderr)
        return 0
    except DialogueError as exc:
        print(f"zt_pty_login: FAILED: {exc}", file=sys.stderr)
        return 1
    finally:
        status = session.close()
        print(f"zt_pty_login: zulip-term exit status {status}", file=sys.stderr)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--transcript", help="write what zulip-term printed here")
    parser.add_argument("--timeout", type=float, default=90.0, help="bound on the whole run")
    parser.add_argument("zulip_term")
    parser.add_argument("url")
    parser.add_argument("zuliprc")
    parser.add_argument("credentials", nargs="+", metavar="LOGIN PASSWORD")
    args = parser.parse_args(argv)
    if len(args.credentials) % 2:
        parser.error("credentials come in LOGIN PASSWORD pairs")
    return run(args)


if __name__ == "__main__":
    sys.exit(main())
