"""Sign-in time for a known and an unknown e-mail: no account enumeration by timing."""

from __future__ import annotations

import re
import statistics
import time
from typing import Any

from bench import env
from bench.options import Options
from bench.results import Figure, Target, figure

NAME = "signin"
TITLE = "Sign-in time: known against unknown e-mail"
METHOD = """\
The sign-in form (`POST /sign-in` through Flask's test client, SQLite, the real
password hash: scrypt) is sent a wrong password for an e-mail that has an account
and for one that has none, alternately, each attempt from an address of its own
(so the per-address and per-account backoff never answers 429 instead). Both
answer 422 with the same message. Wall time per request; the median over the
attempts of a repetition, then the median over repetitions. The last figure is
the slower median divided by the faster one, per repetition: within 20 % means
at most 1.2."""

ATTEMPTS = 25
RATIO_TARGET = Target("<=", 1.2, "≤ 1.2 (within 20 %)")
_CSRF = re.compile(r'name="csrf_token"[^>]*value="([^"]+)"')


def run(options: Options) -> list[Figure]:
    attempts = 8 if options.quick else ATTEMPTS
    known: list[float] = []
    unknown: list[float] = []
    ratios: list[float] = []
    with env.database("sqlite") as database:
        app = env.make_app(database)
        seed = env.seed(app)
        client = app.test_client()
        address = 0
        for _ in range(options.repeats):
            times: dict[str, list[float]] = {"known": [], "unknown": []}
            for _ in range(attempts):
                for kind, email in (("known", seed.admin_email), ("unknown", "nobody@example.com")):
                    address += 1
                    times[kind].append(_timed_sign_in(client, email, address) * 1000)
            known.append(statistics.median(times["known"]))
            unknown.append(statistics.median(times["unknown"]))
            ratios.append(max(known[-1], unknown[-1]) / min(known[-1], unknown[-1]))
            options.log(
                f"  sign-in: known {known[-1]:.0f} ms, unknown {unknown[-1]:.0f} ms, "
                f"ratio {ratios[-1]:.2f}"
            )
    setup = "Sign-in form, SQLite, scrypt, wrong password"
    extra = {"attempts_per_repetition": attempts}
    return [
        figure(f"{NAME}.known", NAME, "Sign-in, known e-mail", setup, "ms", known, extra=extra),
        figure(
            f"{NAME}.unknown", NAME, "Sign-in, unknown e-mail", setup, "ms", unknown, extra=extra
        ),
        figure(
            f"{NAME}.ratio",
            NAME,
            "Sign-in, slower ÷ faster of the two medians",
            setup,
            "×",
            ratios,
            target=RATIO_TARGET,
            extra=extra,
        ),
    ]


def _timed_sign_in(client: Any, email: str, address: int) -> float:
    ip = f"10.{(address >> 16) & 255}.{(address >> 8) & 255}.{address & 255}"
    page = client.get("/sign-in", environ_base={"REMOTE_ADDR": ip})
    match = _CSRF.search(page.get_data(as_text=True))
    if match is None:
        raise RuntimeError("the sign-in page has no CSRF token")
    started = time.perf_counter()
    response = client.post(
        "/sign-in",
        data={"email": email, "password": "not the password", "csrf_token": match.group(1)},
        environ_base={"REMOTE_ADDR": ip},
    )
    spent = time.perf_counter() - started
    if response.status_code != 422:
        raise RuntimeError(f"sign-in answered {response.status_code}, not 422")
    return spent
