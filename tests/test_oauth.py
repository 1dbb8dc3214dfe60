"""Multi-workspace install over OAuth: installations in the database, each team its own bot."""

from __future__ import annotations

import re
import threading
import urllib.parse
import urllib.request
from collections.abc import Iterator

import pytest

from crmbot.app import create_app
from crmbot.config import Settings
from crmbot.service import CrmService
from crmbot.store.db import Database
from crmbot.web import create_wsgi, make_server
from tests.fakeslack import FakeSlack
from tests.slackapp import SECRET, SlackSim


@pytest.fixture
def oauth_app(db: Database) -> Iterator[tuple[SlackSim, FakeSlack]]:
    fake = FakeSlack().start()
    for team, user, token in (("T1", "UBOB", "xoxb-one"), ("T2", "UEVE", "xoxb-two")):
        fake.add_token(token, team)
        fake.add_user(team, user, user.lower()[1:], real_name=f"{user} Person", tz="Europe/Berlin")
        fake.add_channel(team, f"C{team}", "sales")
    settings = Settings(
        database_url=db.url,
        slack_signing_secret=SECRET,
        slack_client_id="111.222",
        slack_client_secret="client-secret",
        slack_api_url=fake.url,
        threads=4,
    )
    crm = CrmService(db)
    app = create_app(settings, crm, db=db)
    server = make_server(create_wsgi(app, db), host="127.0.0.1", port=0, threads=4)
    threading.Thread(target=server.run, daemon=True).start()
    try:
        yield SlackSim(f"http://127.0.0.1:{server.effective_port}", fake, crm), fake
    finally:
        server.close()
        fake.stop()


def install(sim: SlackSim, fake: FakeSlack, team: str, token: str, user: str) -> None:
    """Walk Slack's OAuth flow: /slack/install, then the redirect back with a code."""
    with urllib.request.urlopen(sim.base_url + "/slack/install", timeout=10) as response:
        page = response.read().decode()
        # Bolt's state cookie is Secure; a browser on https would send it back as is.
        cookie = response.headers["Set-Cookie"].split(";", 1)[0]
    state = re.search(r"state=([\w\-]+)", page)
    assert state, page
    code = fake.issue_oauth_code(team, token=token, installer_user_id=user)
    query = urllib.parse.urlencode({"code": code, "state": state.group(1)})
    request = urllib.request.Request(
        sim.base_url + "/slack/oauth_redirect?" + query, headers={"Cookie": cookie}
    )
    with urllib.request.urlopen(request, timeout=10) as done:
        assert done.status == 200


def test_two_workspaces_install_and_each_uses_its_own_token(
    oauth_app: tuple[SlackSim, FakeSlack],
) -> None:
    sim, fake = oauth_app
    install(sim, fake, "T1", "xoxb-one", "UBOB")
    install(sim, fake, "T2", "xoxb-two", "UEVE")
    assert "L-1" in sim.command("lead Ana Lima", team="T1", user="UBOB").args["text"]
    reply = sim.command("find ana", team="T2", user="UEVE", channel="CT2")
    assert "Ana" not in reply.args["text"]
    tokens = {c.token for c in fake.calls_to("users.info")}
    assert tokens == {"xoxb-one", "xoxb-two"}


def test_a_workspace_that_never_installed_gets_nothing(
    oauth_app: tuple[SlackSim, FakeSlack],
) -> None:
    sim, _ = oauth_app
    answer, _, _ = sim.send_command("lead Mallory", team="T9", user="UX")
    assert answer.status in (200, 401)
    assert sim.crm.find("T9", "Mallory") == ()
