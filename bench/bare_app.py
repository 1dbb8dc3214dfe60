"""The floor: a Bolt app whose listeners only ack, served exactly like `crmbot serve`."""

from __future__ import annotations

import argparse
from typing import Any

from slack_bolt import App

from crmbot.app import web_client
from crmbot.config import Settings
from crmbot.web import make_server


def build(settings: Settings) -> App:
    app = App(
        token=settings.slack_bot_token,
        signing_secret=settings.slack_signing_secret,
        client=web_client(settings),
    )

    def only_ack(ack: Any) -> None:
        ack()

    app.command(settings.command)(only_ack)
    app.view("log_interaction")(only_ack)
    app.options("record_picker")(lambda ack: ack(options=[]))
    return app


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--port", type=int, default=0)
    args = parser.parse_args()
    from slack_bolt.adapter.wsgi import SlackRequestHandler

    settings = Settings.from_env()
    handler = SlackRequestHandler(build(settings))
    server = make_server(handler, host="127.0.0.1", port=args.port, threads=settings.threads)
    print(f"bare listening on port {server.effective_port}", flush=True)
    server.run()


if __name__ == "__main__":
    main()
