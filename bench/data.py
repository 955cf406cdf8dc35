"""The data every scenario runs against: seeded users on both servers, prepared requests.

keyhouse and the peer get the same users with the same password, hashed at
the same Argon2 parameters (checked here), so that a login costs both the same.
"""

from __future__ import annotations

import base64
import os
import shutil
import sqlite3
import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

from config import CORES, FORM, PASSWORD, Config
from servers import (
    BENCH,
    PEER_BIN,
    PEER_DIR,
    VENV_BIN,
    child_env,
    inherited_settings,
    run_json,
    write_requests,
)

# keyhouse's embedded database in its data dir (settings.DATABASES without a URL).
SQLITE_FILE = "keyhouse.sqlite3"


@dataclass
class Prepared:
    """What `prepare` made: data dirs, the seeded users, and wrk's request files."""

    out: Path
    kh_data: Path
    peer_data: Path
    # seed.py init's JSON: "login" emails, "api" (email, key) pairs, "argon2", "server", ...
    seed: dict[str, Any]
    # The peer's seed.py JSON: "login" usernames, "api" tokens, "password_hash".
    peer_seed: dict[str, Any]
    # The KEYHOUSE_ARGON2_* keyhouse hashed with, handed to the peer too.
    argon2_env: dict[str, str]
    # wrk request files by name: kh_login, kh_me, kh_me_fixed, kh_verify, gw_page,
    # peer_login, peer_me.
    requests: dict[str, Path]
    # results.json's "setup": what ran (cores, workers, Argon2 parameters, ...).
    setup: dict[str, Any]

    @property
    def logs(self) -> Path:
        return self.out / "logs"


def basic(email: str, key: str) -> str:
    """An HTTP Basic `Authorization` value for Zulip's API (email:API key)."""
    return "Basic " + base64.b64encode(f"{email}:{key}".encode()).decode()


def login_body(username: str) -> str:
    return urlencode({"username": username, "password": PASSWORD})


def snapshot_data_dir(source: Path, dest: Path) -> None:
    """Copy a keyhouse data dir whose server is stopped; the database through SQLite's backup API.

    The backup API copies a consistent database including what is still in the
    WAL file, which copying the files would have to get right by hand.
    """
    shutil.rmtree(dest, ignore_errors=True)
    shutil.copytree(source, dest, ignore=shutil.ignore_patterns(f"{SQLITE_FILE}*", "emails"))
    src = sqlite3.connect(source / SQLITE_FILE)
    dst = sqlite3.connect(dest / SQLITE_FILE)
    try:
        with dst:
            src.backup(dst)
    finally:
        src.close()
        dst.close()


def _fresh_dirs(out: Path) -> None:
    for d in ("keyhouse-data", "peer-data", "requests", "fleet"):
        shutil.rmtree(out / d, ignore_errors=True)
    for grown in out.glob("growth-*"):
        shutil.rmtree(grown, ignore_errors=True)
    (out / "requests").mkdir(parents=True)
    (out / "logs").mkdir(exist_ok=True)


def seed_keyhouse(kh_data: Path, login_users: int, api_users: int, **env: str) -> dict[str, Any]:
    """A new keyhouse data dir with the root realm and seed.py's users (bench/cost.py too).

    ``env`` adds settings, e.g. KEYHOUSE_DATABASE_URL to seed a PostgreSQL database.
    """
    kh_env = child_env(KEYHOUSE_DATA_DIR=str(kh_data), **env)
    subprocess.run(
        [str(VENV_BIN / "keyhouse"), "realm", "create", "--subdomain", "", "--name", "Bench"],
        env=kh_env,
        check=True,
        stdout=subprocess.DEVNULL,
        timeout=300,
    )
    seed: dict[str, Any] = run_json(
        [
            str(VENV_BIN / "python"),
            str(BENCH / "seed.py"),
            "init",
            "--login-users",
            str(login_users),
            "--api-users",
            str(api_users),
            "--password",
            PASSWORD,
        ],
        kh_env,
    )
    return seed


def _seed_peer(cfg: Config, peer_data: Path, argon2_env: dict[str, str]) -> dict[str, Any]:
    peer_env = child_env(PEER_DATA_DIR=str(peer_data), **argon2_env)
    peer: dict[str, Any] = run_json(
        [
            str(PEER_BIN / "python"),
            "seed.py",
            "--login-users",
            str(cfg.login_users),
            "--api-users",
            str(cfg.api_users),
            "--password",
            PASSWORD,
        ],
        peer_env,
        cwd=PEER_DIR,
    )
    return peer


def _write_request_files(r: Path, seed: dict[str, Any], peer: dict[str, Any]) -> dict[str, Path]:
    login = ("POST", "/api/v1/fetch_api_key", "Content-Type", FORM)
    peer_login = ("POST", "/api-token-auth/", "Content-Type", FORM)
    return {
        "kh_login": write_requests(
            r / "kh_login.tsv", [(*login, login_body(e)) for e in seed["login"]]
        ),
        "kh_me": write_requests(
            r / "kh_me.tsv",
            [("GET", "/api/v1/users/me", "Authorization", basic(e, k), "") for e, k in seed["api"]],
        ),
        "kh_me_fixed": write_requests(
            r / "kh_me_fixed.tsv",
            [("GET", "/api/v1/users/me", "Authorization", basic(*seed["api"][0]), "")],
        ),
        # The gateway scenario: the check itself, and a page behind nginx (direct or guarded).
        "kh_verify": write_requests(
            r / "kh_verify.tsv",
            [("GET", "/auth/verify", "Authorization", basic(e, k), "") for e, k in seed["api"]],
        ),
        "gw_page": write_requests(
            r / "gw_page.tsv",
            [("GET", "/app/page?x=1", "Authorization", basic(e, k), "") for e, k in seed["api"]],
        ),
        "peer_login": write_requests(
            r / "peer_login.tsv", [(*peer_login, login_body(e)) for e in peer["login"]]
        ),
        "peer_me": write_requests(
            r / "peer_me.tsv",
            [("GET", "/me", "Authorization", f"Token {t}", "") for t in peer["api"]],
        ),
    }


def keyhouse_request_files(r: Path, seed: dict[str, Any]) -> dict[str, Path]:
    """keyhouse's login, users/me and fixed-user users/me files alone (the fleet stage)."""
    r.mkdir(parents=True, exist_ok=True)
    login = ("POST", "/api/v1/fetch_api_key", "Content-Type", FORM)
    me = ("GET", "/api/v1/users/me", "Authorization")
    return {
        "kh_login": write_requests(
            r / "kh_login.tsv", [(*login, login_body(e)) for e in seed["login"]]
        ),
        "kh_me": write_requests(r / "kh_me.tsv", [(*me, basic(e, k), "") for e, k in seed["api"]]),
        "kh_me_fixed": write_requests(r / "kh_me_fixed.tsv", [(*me, basic(*seed["api"][0]), "")]),
    }


def prepare(cfg: Config, out: Path) -> Prepared:
    """Empty data dirs, both servers seeded alike, and the request files wrk cycles through."""
    _fresh_dirs(out)
    kh_data, peer_data = out / "keyhouse-data", out / "peer-data"
    seed = seed_keyhouse(kh_data, cfg.login_users, cfg.api_users)
    a = seed["argon2"]
    argon2_env = {
        "KEYHOUSE_ARGON2_MEMORY_COST": str(a["memory_cost"]),
        "KEYHOUSE_ARGON2_TIME_COST": str(a["time_cost"]),
        "KEYHOUSE_ARGON2_PARALLELISM": str(a["parallelism"]),
    }
    kh_params = seed["password_hash"].split("$")[3]
    # Only these stages run the peer: without them (BENCH_STAGES=fleet, say) it is not seeded.
    if {"side_by_side", "gateway"} & set(cfg.stages):
        peer = _seed_peer(cfg, peer_data, argon2_env)
        peer_params = peer["password_hash"].split("$")[3]
        if kh_params != peer_params:
            raise RuntimeError(
                f"Argon2 parameters differ: keyhouse {kh_params}, peer {peer_params}"
            )
    else:
        peer = {"login": [], "api": [], "password_hash": ""}
    setup = {
        "cores": CORES,
        "workers": cfg.workers,
        "server": seed["server"]["server"],
        "threads_per_worker": seed["server"]["threads"],
        # 0: `keyhouse serve` gives each worker its share of the cores.
        # One budget that every worker shares (keyhouse/hashing_slots.py); any one
        # worker may use all of it.
        "hashing_slots": seed["server"]["hashing_slots"] or (os.cpu_count() or 1),
        "hashing_max_wait_s": seed["server"]["hashing_max_wait"],
        "hashing_max_waiters": seed["server"]["hashing_max_waiters"],
        "argon2": a,
        "argon2_encoded_params": kh_params,
        "login_users": cfg.login_users,
        "api_users": cfg.api_users,
        "bench_seconds": cfg.seconds,
        "inherited_keyhouse_settings": inherited_settings(),
    }
    return Prepared(
        out=out,
        kh_data=kh_data,
        peer_data=peer_data,
        seed=seed,
        peer_seed=peer,
        argon2_env=argon2_env,
        requests=_write_request_files(out / "requests", seed, peer),
        setup=setup,
    )
