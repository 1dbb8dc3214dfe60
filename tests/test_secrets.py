"""Installation tokens at rest: encrypted with CRMBOT_ENCRYPTION_KEY, rotated, checked."""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from slack_sdk.oauth.installation_store import Installation
from sqlalchemy import inspect, text

from crmbot import cli
from crmbot.app import create_app
from crmbot.config import ConfigError, Settings
from crmbot.installations import SECRET_COLUMNS, SealedInstallationStore, installation_store
from crmbot.scheduler import Tokens
from crmbot.service import CrmService
from crmbot.store.db import Database
from crmbot.tokencrypt import SEALED, TokenCipher, new_key
from crmbot.web import create_wsgi, make_server
from tests.fakeslack import FakeSlack
from tests.slackapp import SECRET, SlackSim
from tests.test_oauth import install

KEY_A = new_key()
KEY_B = new_key()
CLIENT = "111.222"
LONG_REFRESH = "xoxe-1-" + "My0xLTEyMzQ1" * 14  # rotating tokens run long: sealed, >200 chars


def settings_for(db: Database, fake_url: str = "http://127.0.0.1:9/", key: str | None = None):
    return Settings(
        database_url=db.url,
        slack_signing_secret=SECRET,
        slack_client_id=CLIENT,
        slack_client_secret="client-secret",
        slack_api_url=fake_url,
        threads=4,
        encryption_key=key,
    )


def _drop_slack_rows(db: Database) -> None:
    # The PostgreSQL test schema is shared by the run and only crmbot's tables are truncated.
    names = set(inspect(db.engine).get_table_names())
    with db.engine.begin() as conn:
        for table in ("slack_installations", "slack_bots"):
            if table in names:
                conn.execute(text(f"DELETE FROM {table}"))


@pytest.fixture(autouse=True)
def _no_installations_left_behind(request: pytest.FixtureRequest) -> Iterator[None]:
    """Encrypted rows must not outlive a test: on PostgreSQL the schema (and slack-sdk's
    tables in it, which the `db` fixture doesn't truncate) is shared by the whole run."""
    db = request.getfixturevalue("db") if "db" in request.fixturenames else None
    yield
    if db is not None:  # asked for here, so torn down after this
        _drop_slack_rows(db)


def raw_rows(db: Database) -> list[dict[str, object]]:
    """Every row of slack-sdk's installation tables, exactly as stored."""
    rows: list[dict[str, object]] = []
    with db.engine.connect() as conn:
        for table in ("slack_installations", "slack_bots"):
            rows += [dict(r._mapping) for r in conn.execute(text(f"SELECT * FROM {table}"))]
    return rows


@pytest.fixture
def serve(db: Database) -> Iterator[Callable[[str | None], tuple[SlackSim, FakeSlack]]]:
    """Start crmbot in OAuth mode with a given CRMBOT_ENCRYPTION_KEY (several times a test)."""
    _drop_slack_rows(db)
    fake = FakeSlack().start()
    fake.add_token("xoxb-one-secret", "T1")
    fake.add_user("T1", "UBOB", "bob", real_name="Bob Person", tz="Europe/Berlin")
    fake.add_channel("T1", "CT1", "sales")
    servers = []

    def start(key: str | None) -> tuple[SlackSim, FakeSlack]:
        settings = settings_for(db, fake.url, key)
        app = create_app(settings, CrmService(db), db=db)
        server = make_server(create_wsgi(app, db), host="127.0.0.1", port=0, threads=4)
        threading.Thread(target=server.run, daemon=True).start()
        servers.append(server)
        return SlackSim(f"http://127.0.0.1:{server.effective_port}", fake, CrmService(db)), fake

    try:
        yield start
    finally:
        for server in servers:
            server.close()
        fake.stop()


def test_an_oauth_install_with_a_key_stores_no_token_in_plaintext_and_still_works(
    serve: Callable[[str | None], tuple[SlackSim, FakeSlack]],
    db: Database,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG)
    sim, fake = serve(KEY_A)
    install(sim, fake, "T1", "xoxb-one-secret", "UBOB")
    rows = raw_rows(db)
    assert len(rows) == 2  # the installation and its bot
    for row in rows:
        assert str(row["bot_token"]).startswith(SEALED)
        assert not any("xoxb-one-secret" in str(value) for value in row.values())
    assert "L-1" in sim.command("lead Ana Lima", team="T1", user="UBOB", channel="CT1").args["text"]
    assert {c.token for c in fake.calls_to("users.info")} == {"xoxb-one-secret"}
    # The clock process reads the same rows through the same store.
    assert Tokens(settings_for(db, key=KEY_A), db).token_for("T1") == "xoxb-one-secret"
    assert KEY_A not in caplog.text
    assert "xoxb-one-secret" not in caplog.text


def test_tokens_stored_before_the_key_are_read_and_encrypt_tokens_encrypts_them(
    serve: Callable[[str | None], tuple[SlackSim, FakeSlack]],
    db: Database,
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    sim, fake = serve(None)
    install(sim, fake, "T1", "xoxb-one-secret", "UBOB")
    assert {row["bot_token"] for row in raw_rows(db)} == {"xoxb-one-secret"}

    sim, fake = serve(KEY_A)  # the key is set later: the plaintext rows still work
    assert "L-1" in sim.command("lead Ana Lima", team="T1", user="UBOB", channel="CT1").args["text"]

    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("DATABASE_URL", db.url)
    monkeypatch.setenv("CRMBOT_ENCRYPTION_KEY", KEY_A)
    assert cli.main(["encrypt-tokens"]) == 0
    assert "encrypted 2 tokens" in capsys.readouterr().out
    assert all(str(row["bot_token"]).startswith(SEALED) for row in raw_rows(db))
    assert cli.main(["encrypt-tokens"]) == 0  # again: nothing left to do
    assert "encrypted 0 tokens with the first key; 2 encrypted, 0 plaintext" in (
        capsys.readouterr().out
    )
    sim, _ = serve(KEY_A)
    assert "L-2" in sim.command("lead Bo Diaz", team="T1", user="UBOB", channel="CT1").args["text"]


def _store_with(db: Database, key: str | None) -> SealedInstallationStore:
    return installation_store(settings_for(db, key=key), db.engine)


def test_a_wrong_or_missing_key_stops_crmbot_with_a_paragraph_not_a_traceback(
    db: Database,
) -> None:
    _drop_slack_rows(db)
    _store_with(db, KEY_A).save(
        Installation(app_id="A1", team_id="T1", user_id="UBOB", bot_token="xoxb-t1")
    )
    with pytest.raises(ConfigError, match="encrypted with a key that CRMBOT_ENCRYPTION_KEY"):
        create_app(settings_for(db, key=KEY_B), CrmService(db), db=db)
    with pytest.raises(ConfigError, match="CRMBOT_ENCRYPTION_KEY is not set"):
        Tokens(settings_for(db, key=None), db)


def test_rotation_reads_old_and_new_keys_and_encrypt_tokens_moves_everything_to_the_first(
    db: Database, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    _drop_slack_rows(db)
    _store_with(db, KEY_A).save(
        Installation(
            app_id="A1",
            team_id="T1",
            user_id="UBOB",
            bot_token="xoxb-t1",
            bot_refresh_token=LONG_REFRESH,
            user_token="xoxp-user",
        )
    )
    rotating = _store_with(db, f"{KEY_B},{KEY_A}")  # new key first, old one still listed
    bot = rotating.find_bot(enterprise_id=None, team_id="T1")
    assert bot is not None
    assert (bot.bot_token, bot.bot_refresh_token) == ("xoxb-t1", LONG_REFRESH)
    found = rotating.find_installation(enterprise_id=None, team_id="T1")
    assert found is not None
    assert found.user_token == "xoxp-user"

    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("DATABASE_URL", db.url)
    monkeypatch.setenv("CRMBOT_ENCRYPTION_KEY", f"{KEY_B},{KEY_A}")
    assert cli.main(["encrypt-tokens"]) == 0
    only_new = TokenCipher([KEY_B])
    sealed = [
        str(row[name])
        for row in raw_rows(db)
        for name in SECRET_COLUMNS
        if row.get(name) is not None
    ]
    assert len(sealed) == 5  # bot, refresh and user token; the bot row: bot and refresh token
    assert {only_new.open(value) for value in sealed} == {"xoxb-t1", LONG_REFRESH, "xoxp-user"}
    bot = _store_with(db, KEY_B).find_bot(enterprise_id=None, team_id="T1")  # old key dropped
    assert bot is not None
    assert bot.bot_token == "xoxb-t1"

    assert cli.main(["encrypt-tokens", "--decrypt"]) == 0  # and back, to switch encryption off
    assert "xoxb-t1" in {row["bot_token"] for row in raw_rows(db)}
    assert _store_with(db, None).find_bot(enterprise_id=None, team_id="T1") is not None


@pytest.mark.parametrize("value", ["nope", "x" * 44, f"{KEY_A},not-a-key", " , "])
def test_an_unusable_key_is_a_one_paragraph_configuration_error(
    value: str, monkeypatch: pytest.MonkeyPatch, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(ConfigError, match="CRMBOT_ENCRYPTION_KEY is not usable") as caught:
        Settings.from_env({"CRMBOT_ENCRYPTION_KEY": value})
    assert "not-a-key" not in str(caught.value)  # a secret, even a wrong one, isn't echoed
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("CRMBOT_ENCRYPTION_KEY", value)
    assert cli.main(["encrypt-tokens", "--new-key"]) == 2
    err = capsys.readouterr().err
    assert "CRMBOT_ENCRYPTION_KEY" in err
    assert "Traceback" not in err


def test_new_key_prints_a_usable_key(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("CRMBOT_ENCRYPTION_KEY", raising=False)
    assert cli.main(["encrypt-tokens", "--new-key"]) == 0
    key = capsys.readouterr().out.strip()
    assert Settings.from_env({"CRMBOT_ENCRYPTION_KEY": key}).token_cipher() is not None
    assert key not in repr(Settings.from_env({"CRMBOT_ENCRYPTION_KEY": key}))


def test_migration_0008_widens_existing_token_columns_on_postgresql(db: Database) -> None:
    if db.dialect != "postgresql":
        pytest.skip("SQLite doesn't enforce VARCHAR lengths")
    from slack_sdk.oauth.installation_store.sqlalchemy import SQLAlchemyInstallationStore

    from crmbot.store.migrate import downgrade, upgrade

    with db.engine.begin() as conn:
        conn.execute(text("DROP TABLE IF EXISTS slack_installations, slack_bots"))
    plain = SQLAlchemyInstallationStore(client_id=CLIENT, engine=db.engine)
    plain.create_tables()  # as slack-sdk makes them: VARCHAR(200)
    downgrade(db.url, "0005")
    upgrade(db.url)
    columns = {c["name"]: c["type"] for c in inspect(db.engine).get_columns("slack_bots")}
    assert str(columns["bot_token"]) == "TEXT"
    _store_with(db, KEY_A).save(
        Installation(
            app_id="A1",
            team_id="T1",
            user_id="UBOB",
            bot_token="xoxb-t1",
            bot_refresh_token=LONG_REFRESH,
        )
    )
    bot = _store_with(db, KEY_A).find_bot(enterprise_id=None, team_id="T1")
    assert bot is not None
    assert bot.bot_refresh_token == LONG_REFRESH
