"""Applying rules to entities, and what the caller learns (for 429s and headers)."""

from __future__ import annotations

import time
from collections.abc import Collection, Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass

from django.conf import settings
from django.http import HttpRequest

from keyhouse.auth.ratelimit.stores import Rule, StoreAnswer, get_store
from keyhouse.auth.refusals import RateLimited
from keyhouse.auth.signals import notify, rate_limited
from keyhouse.request_notes import RequestNotes


@dataclass(frozen=True)
class RateLimitResult:
    domain: str
    limited: bool
    secs_to_freedom: float
    remaining: int
    max_calls: int
    key: str = ""
    recorded: str | None = None


def rules_for(domain: str) -> list[Rule]:
    """A domain's rules, sorted by window; Zulip treats an empty list as no limit."""
    rules = sorted(settings.RATE_LIMITING_RULES.get(domain) or [(1, 9999)])
    return [(int(w), int(n)) for w, n in rules]


def _key(domain: str, entity: str) -> str:
    return f"{domain}:{entity}"


def _result(domain: str, key: str, rules: list[Rule], answer: StoreAnswer) -> RateLimitResult:
    return RateLimitResult(
        domain,
        answer.limited,
        answer.secs_to_freedom,
        answer.remaining,
        rules[-1][1],
        key,
        answer.recorded,
    )


def hit(request: HttpRequest | None, domain: str, entity: str) -> RateLimitResult:
    """Count one hit for ``entity`` under ``domain``; raise RateLimited if over."""
    rules = rules_for(domain)
    key = _key(domain, entity)
    result = _result(domain, key, rules, get_store().hit(key, rules))
    if request is not None:
        RequestNotes.get_notes(request).rate_limits_applied.append(result)
    if result.limited:
        notify(rate_limited, RateLimited, domain=domain)  # observers: ops/metrics.py
        raise RateLimited(result.secs_to_freedom)
    return result


def hit_all(request: HttpRequest | None, hits: Sequence[tuple[str, str]]) -> list[RateLimitResult]:
    """Count one hit for each (domain, entity), in order, in one call to the store.

    As ``hit`` for each in turn: the first refused one raises RateLimited, and the
    ones before it stay counted.
    """
    checked = [(domain, _key(domain, entity), rules_for(domain)) for domain, entity in hits]
    answers = get_store().hit_many([(key, rules) for _, key, rules in checked])
    results = [
        _result(domain, key, rules, answer)
        for (domain, key, rules), answer in zip(checked, answers, strict=False)
    ]
    if request is not None:
        RequestNotes.get_notes(request).rate_limits_applied.extend(results)
    refused = results[-1] if results and results[-1].limited else None
    if refused is not None:
        notify(rate_limited, RateLimited, domain=refused.domain)  # observers: ops/metrics.py
        raise RateLimited(refused.secs_to_freedom)
    return results


def clear(domain: str, entity: str) -> None:
    get_store().clear(_key(domain, entity))


def clear_all(domain: str, entities: Collection[str]) -> None:
    """Forget these entities' hits under ``domain``, in one call to the store."""
    get_store().clear_many([_key(domain, entity) for entity in entities])


def joint_transaction() -> AbstractContextManager[object]:
    """One commit for the store's writes and the database's, where they share one."""
    return get_store().joint_transaction()


def refund(request: HttpRequest, domains: set[str]) -> None:
    """Take back this request's recorded hits in ``domains`` (it was not the client's fault)."""
    store = get_store()
    kept = []
    for result in applied_results(request):
        if result.domain in domains and result.recorded is not None:
            store.refund(result.key, result.recorded)
        else:
            kept.append(result)
    RequestNotes.get_notes(request).rate_limits_applied = kept


def applied_results(request: HttpRequest) -> list[RateLimitResult]:
    return RequestNotes.get_notes(request).rate_limits_applied


def rate_limit_headers(request: HttpRequest) -> dict[str, str]:
    """Zulip's X-RateLimit-* headers for every limit this request went through."""
    results = applied_results(request)
    if not results or not settings.RATE_LIMITING:
        return {}
    return {
        "X-RateLimit-Limit": str(min(r.max_calls for r in results)),
        "X-RateLimit-Remaining": str(min(r.remaining for r in results)),
        "X-RateLimit-Reset": str(int(time.time() + max(r.secs_to_freedom for r in results))),
    }
