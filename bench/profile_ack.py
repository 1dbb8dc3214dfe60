"""Where a Log submission's CPU goes in the web process: cProfile over the WSGI app.

    python -m bench.profile_ack [--requests 2000] [--top 25]

The app is built as `crmbot serve` builds it (two worker processes take the confirmations;
a fake Slack in a process of its own), on a copy of the quick SQLite data set, and called
in-process one request at a time with signed Log submissions, so the profile has no HTTP
server and no thread contention in it: it is the work itself. A submission's listener runs
in the request's thread (crmbot/handlers/inline.py), so one thread's profile holds all of
it. Prints CPU ms per request with and without the profiler, the share of the big parts,
and cProfile's top functions by cumulative time; appends the parts to bench/RESULTS.md. The loop waits (without CPU) whenever the
workers fall behind, so every confirmation is posted by a worker, as in a steady state.
"""

from __future__ import annotations

import argparse
import cProfile
import io
import os
import platform
import pstats
import shutil
import tempfile
import time
from collections.abc import Callable, Iterable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from bench import ack, datagen

# (label, function name as cProfile lists it: file suffix and function)
PARTS = [
    ("the whole request (WSGI app)", "crmbot/web.py", "wsgi"),
    ("Bolt: reading the request (form body, JSON)", "slack_bolt/request/request.py", "__init__"),
    ("Bolt: dispatch (middleware, listener matching, the listener)", "app/app.py", "dispatch"),
    ("crmbot's listener (after Bolt)", "crmbot/handlers/modals.py", "submit"),
    (
        "the save, its request key claimed inside it",
        "crmbot/service/activity.py",
        "log_interaction",
    ),
    ("  of which the write transaction (begin, claim, commit)", "crmbot/store/db.py", "write"),
    ("the form read (forms.parse_log)", "crmbot/handlers/forms.py", "parse_log"),
    ("the confirmation handed to a worker", "crmbot/handlers/offload.py", "notify"),
]


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--requests", type=int, default=2000)
    parser.add_argument("--top", type=int, default=25)
    args = parser.parse_args()
    source, _ = datagen.ensure("sqlite", 20_000)
    workdir = Path(tempfile.mkdtemp(prefix="crmbot-profile-"))
    db_file = workdir / "profile.db"
    shutil.copy(source.removeprefix("sqlite:///"), db_file)
    manager = ack.FakeProcess()
    manager.start()
    fake: Any = manager.Fake(response_url_max_uses=10**9)  # type: ignore[attr-defined]
    fake.add_token(ack.TOKEN, ack.WS, bot_user_id="UBOT")
    fake.add_user(ack.WS, ack.USER, "benchrep", real_name="Bench Rep", tz="Europe/Berlin")
    fake.add_channel(ack.WS, "CBENCH", "bench")
    os.environ.update(
        {
            "DATABASE_URL": f"sqlite:///{db_file}",
            "SLACK_BOT_TOKEN": ack.TOKEN,
            "SLACK_SIGNING_SECRET": ack.SECRET,
            "SLACK_API_URL": fake.begin(0),
            "CRMBOT_WEB_SCHEDULER": "false",
            "CRMBOT_THREADS": "16",
        }
    )
    from crmbot.app import create_app
    from crmbot.cli import _service
    from crmbot.config import Settings
    from crmbot.handlers.offload import Offload
    from crmbot.web import create_wsgi

    settings = Settings.from_env()
    db, crm = _service(settings)
    offload = Offload(settings, workers=2).start()
    try:
        wsgi = create_wsgi(create_app(settings, crm, db=db, offload=offload), db)
        build = ack.log_submissions([])
        total = 300 + 2 * args.requests
        bodies = [build(i) for i in range(total)]
        sent = iter(range(total))

        def call() -> None:
            body, content_type = bodies[next(sent)]
            ts = int(time.time())
            environ = {
                "REQUEST_METHOD": "POST",
                "PATH_INFO": "/slack/events",
                "QUERY_STRING": "",
                "SERVER_NAME": "bench",
                "SERVER_PORT": "80",
                "SERVER_PROTOCOL": "HTTP/1.1",
                "CONTENT_TYPE": content_type,
                "CONTENT_LENGTH": str(len(body)),
                "HTTP_X_SLACK_REQUEST_TIMESTAMP": str(ts),
                "HTTP_X_SLACK_SIGNATURE": ack.sign(body, ts, ack.SECRET),
                "wsgi.input": io.BytesIO(body),
                "wsgi.url_scheme": "http",
            }
            status: list[str] = []
            answer: Iterable[bytes] = wsgi(environ, lambda s, _h: status.append(s))
            b"".join(answer)
            if not status[0].startswith("200"):
                raise SystemExit(f"the app answered {status[0]}")
            while offload.depth > 16:  # the workers post slower than this loop submits:
                time.sleep(0.005)  # wait (no CPU) rather than post from this process

        for _ in range(300):  # warm up
            call()
        time.sleep(1)
        plain = cpu_per_request(call, args.requests)
        profiler = cProfile.Profile()
        profiler.enable()
        profiled = cpu_per_request(call, args.requests)
        profiler.disable()
        report(profiler, args.requests, plain, profiled, args.top)
    finally:
        offload.close()
        fake.stop()
        manager.shutdown()
        db.dispose()
        shutil.rmtree(workdir, ignore_errors=True)


def cpu_per_request(call: Callable[[], None], n: int) -> float:
    started = time.process_time()
    for _ in range(n):
        call()
    return (time.process_time() - started) * 1000 / n


def report(profiler: cProfile.Profile, n: int, plain: float, profiled: float, top: int) -> None:
    stats = pstats.Stats(profiler)
    table: dict[tuple[str, int, str], Any] = stats.stats  # type: ignore[attr-defined]
    whole = 0.0
    rows = []
    print(f"CPU per Log submission, in-process: {plain:.3f} ms ({profiled:.3f} ms profiled)")
    print(f"{'part':64s} {'share':>6s} {'ms':>7s}")
    for label, file_suffix, function in PARTS:
        cumulative = sum(
            row[3]
            for (file, _, name), row in table.items()
            if file.endswith(file_suffix) and name == function
        )
        if not whole:
            whole = cumulative or 1.0
        share = cumulative / whole
        rows.append(f"| {label.strip()} | {share:.1%} | {share * plain:.3f} |")
        print(f"{label:64s} {share:6.1%} {share * plain:7.3f}")
    out = io.StringIO()
    pstats.Stats(profiler, stream=out).sort_stats("cumulative").print_stats(top)
    print(out.getvalue())
    section = [
        f"\n## {datetime.now(UTC):%Y-%m-%d %H:%M} UTC · where a Log submission's CPU goes "
        "(cProfile, in-process)",
        "",
        f"- command: `python -m bench.profile_ack --requests {n}`; {os.cpu_count()} cores, "
        f"Python {platform.python_version()}",
        "- CPU per Log submission through the WSGI app, one at a time, no HTTP server: "
        f"**{plain:.3f} ms** ({profiled:.3f} ms under the profiler; the ms column scales "
        "each share to the unprofiled figure)",
        "- not in the profile (other threads): the hand-off to the workers' pipe and the "
        "HTTP server; at concurrency 10 the web process also spends CPU on threads taking "
        "turns with the interpreter lock (bench.ack's CPU column is the whole process)",
        "",
        "| part | share | ms |",
        "|---|---:|---:|",
        *rows,
        "",
    ]
    with ack.RESULTS.open("a") as results:
        results.write("\n".join(section))


if __name__ == "__main__":
    main()
