"""FakeSlack speaks the Slack Web API wire format to a real slack_sdk WebClient."""

from __future__ import annotations

import json
import threading
import time
import urllib.request
from collections.abc import Iterator
from typing import Any

import pytest
from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError
from slack_sdk.http_retry.builtin_handlers import (
    ConnectionErrorRetryHandler,
    RateLimitErrorRetryHandler,
    ServerErrorRetryHandler,
)
from slack_sdk.http_retry.builtin_interval_calculators import FixedValueRetryIntervalCalculator

from tests.fakeslack import MISSING_TEXT_WARNING, FakeSlack, Fault

TOKEN = "xoxb-team-one"
OTHER_TOKEN = "xoxb-team-two"


@pytest.fixture
def slack() -> Iterator[FakeSlack]:
    with FakeSlack() as fake:
        fake.add_team("T1", name="Acme", domain="acme")
        fake.add_token(TOKEN, "T1", bot_user_id="UBOT")
        fake.add_user("T1", "U1", "alice", real_name="Alice Example", tz="Europe/Berlin")
        fake.add_user("T1", "U2", "bob", email="bob@acme.test")
        fake.add_channel("T1", "C1", "sales")
        fake.add_channel("T1", "C2", "archive", is_archived=True)
        fake.add_channel("T1", "C3", "closed-door", members=["U1"])
        fake.add_token(OTHER_TOKEN, "T2", bot_user_id="UBOT2")
        fake.add_user("T2", "U9", "mallory")
        fake.add_channel("T2", "C9", "elsewhere")
        yield fake


@pytest.fixture
def client(slack: FakeSlack) -> WebClient:
    return WebClient(token=TOKEN, base_url=slack.url)


def section(text: str, block_id: str | None = None) -> dict[str, Any]:
    block: dict[str, Any] = {"type": "section", "text": {"type": "mrkdwn", "text": text}}
    if block_id is not None:
        block["block_id"] = block_id
    return block


def modal(title: str = "New lead", **extra: Any) -> dict[str, Any]:
    return {
        "type": "modal",
        "callback_id": "new_lead",
        "title": {"type": "plain_text", "text": title},
        "blocks": [section("Who is it?")],
        **extra,
    }


def api_error(call: Any) -> str:
    with pytest.raises(SlackApiError) as raised:
        call()
    return str(raised.value.response["error"])


# -- messages ---------------------------------------------------------------


def test_posted_message_can_be_updated_and_read_back(slack: FakeSlack, client: WebClient) -> None:
    posted = client.chat_postMessage(channel="C1", text="Deal D-1 won", blocks=[section("*Won*")])
    client.chat_update(channel="C1", ts=posted["ts"], text="Deal D-1 won (updated)")

    [message] = slack.messages("C1")
    assert message["ts"] == posted["ts"]
    assert message["text"] == "Deal D-1 won (updated)"
    assert message["blocks"] == [section("*Won*")]  # blocks not sent on update are kept
    assert message["user"] == "UBOT"
    assert slack.calls_to("chat.postMessage")[0].args["blocks"] == [section("*Won*")]
    assert slack.calls_to("chat.postMessage")[0].token == TOKEN


def test_message_timestamps_are_unique_and_increasing(client: WebClient) -> None:
    stamps = [client.chat_postMessage(channel="C1", text=str(i))["ts"] for i in range(5)]

    assert stamps == sorted(stamps, key=float)
    assert len(set(stamps)) == 5


def test_concurrent_posts_are_all_recorded_with_distinct_timestamps(
    slack: FakeSlack, client: WebClient
) -> None:
    def post_five() -> None:
        for i in range(5):
            client.chat_postMessage(channel="C1", text=str(i))

    workers = [threading.Thread(target=post_five) for _ in range(8)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()

    assert len(slack.wait_for("chat.postMessage", count=40)) == 40
    assert len({m["ts"] for m in slack.messages("C1")}) == 40


def test_updating_an_unknown_ts_is_message_not_found(client: WebClient) -> None:
    assert api_error(lambda: client.chat_update(channel="C1", ts="1.000001", text="x")) == (
        "message_not_found"
    )


def test_deleted_message_disappears_from_the_channel(slack: FakeSlack, client: WebClient) -> None:
    posted = client.chat_postMessage(channel="C1", text="oops")
    client.chat_delete(channel="C1", ts=posted["ts"])

    assert slack.messages("C1") == []


def test_someone_elses_message_cannot_be_updated_but_has_a_permalink(
    slack: FakeSlack, client: WebClient
) -> None:
    ts = slack.add_message("C1", "call me maybe", user="U1", ts="1700000000.000100")

    assert api_error(lambda: client.chat_update(channel="C1", ts=ts, text="x")) == (
        "cant_update_message"
    )
    link = client.chat_getPermalink(channel="C1", message_ts=ts)["permalink"]
    assert link == "https://acme.slack.com/archives/C1/p1700000000000100"


def test_posting_to_unknown_archived_or_unjoined_channels_fails(
    slack: FakeSlack, client: WebClient
) -> None:
    assert api_error(lambda: client.chat_postMessage(channel="C404", text="x")) == (
        "channel_not_found"
    )
    assert api_error(lambda: client.chat_postMessage(channel="C9", text="x")) == (
        "channel_not_found"  # another workspace's channel
    )
    assert api_error(lambda: client.chat_postMessage(channel="C2", text="x")) == "is_archived"
    assert api_error(lambda: client.chat_postMessage(channel="C3", text="x")) == "not_in_channel"

    client.conversations_join(channel="C3")
    client.chat_postMessage(channel="C3", text="now I am in")

    assert [m["text"] for m in slack.messages("C3")] == ["now I am in"]


def test_direct_messages_go_to_a_deterministic_dm_channel(
    slack: FakeSlack, client: WebClient
) -> None:
    dm = client.conversations_open(users="U2")["channel"]["id"]
    client.chat_postMessage(channel=dm, text="You now own L-3")
    client.chat_postMessage(channel="U2", text="and T-5")

    assert dm == "DU2"
    assert [m["text"] for m in slack.dms_to("U2")] == ["You now own L-3", "and T-5"]


def test_blocks_without_text_fallback_get_a_warning(slack: FakeSlack, client: WebClient) -> None:
    with pytest.warns(UserWarning, match="`text` argument is missing"):  # the sdk warns too
        answer = client.chat_postMessage(channel="C1", blocks=[section("no fallback")])

    assert answer["warning"] == MISSING_TEXT_WARNING
    assert slack.calls_to("chat.postMessage")[0].warnings == [MISSING_TEXT_WARNING]


def test_form_encoded_json_strings_are_decoded(slack: FakeSlack, client: WebClient) -> None:
    client.api_call(
        "chat.postEphemeral",
        params={"channel": "C1", "user": "U1", "text": "hi", "blocks": json.dumps([section("x")])},
    )

    [call] = slack.calls_to("chat.postEphemeral")
    assert call.args["blocks"] == [section("x")]
    assert slack.ephemerals(user="U1")[0]["text"] == "hi"


# -- Block Kit strictness -------------------------------------------------------


def test_message_with_51_blocks_is_rejected_as_invalid_blocks(
    slack: FakeSlack, client: WebClient
) -> None:
    blocks = [section(f"line {i}") for i in range(51)]

    with pytest.raises(SlackApiError) as raised:
        client.chat_postMessage(channel="C1", text="too much", blocks=blocks)

    assert raised.value.response["error"] == "invalid_blocks"
    assert raised.value.response["response_metadata"]["messages"]
    assert slack.messages("C1") == []


def test_section_text_over_3000_characters_is_rejected(client: WebClient) -> None:
    blocks = [section("x" * 3001)]

    with pytest.raises(SlackApiError) as raised:
        client.chat_postMessage(channel="C1", text="long", blocks=blocks)

    assert raised.value.response["error"] == "invalid_blocks"
    assert "/blocks/0/text/text" in raised.value.response["response_metadata"]["messages"][0]


def test_duplicate_block_ids_and_wrong_text_types_are_rejected(client: WebClient) -> None:
    header = {"type": "header", "text": {"type": "mrkdwn", "text": "*Pipeline*"}}
    blocks = [section("a", block_id="same"), section("b", block_id="same"), header]

    with pytest.raises(SlackApiError) as raised:
        client.chat_postMessage(channel="C1", text="x", blocks=blocks)

    messages = raised.value.response["response_metadata"]["messages"]
    assert any("/blocks/1/block_id" in m for m in messages)
    assert any("/blocks/2/text/type" in m for m in messages)


def test_static_select_with_101_options_is_rejected(client: WebClient) -> None:
    options = [
        {"text": {"type": "plain_text", "text": f"o{i}"}, "value": str(i)} for i in range(101)
    ]
    select = {"type": "static_select", "action_id": "pick", "options": options}
    block = {"type": "actions", "elements": [select]}

    assert api_error(lambda: client.chat_postMessage(channel="C1", text="x", blocks=[block])) == (
        "invalid_blocks"
    )


def test_modal_title_over_24_characters_is_rejected(slack: FakeSlack, client: WebClient) -> None:
    trigger = slack.issue_trigger_id("U1")

    with pytest.raises(SlackApiError) as raised:
        client.views_open(trigger_id=trigger, view=modal("A title of 25 characters!"))

    assert raised.value.response["error"] == "invalid_arguments"
    assert "/view/title/text" in raised.value.response["response_metadata"]["messages"][0]
    assert slack.open_views == {}


def test_modal_with_input_blocks_needs_a_submit_button(slack: FakeSlack, client: WebClient) -> None:
    name_input = {
        "type": "input",
        "block_id": "name",
        "label": {"type": "plain_text", "text": "Name"},
        "element": {"type": "plain_text_input", "action_id": "value"},
    }

    assert api_error(
        lambda: client.views_open(
            trigger_id=slack.issue_trigger_id(), view=modal(blocks=[name_input])
        )
    ) == ("invalid_arguments")

    opened = client.views_open(
        trigger_id=slack.issue_trigger_id(),
        view=modal(blocks=[name_input], submit={"type": "plain_text", "text": "Save"}),
    )
    assert opened["view"]["id"] in slack.open_views


# -- trigger ids and views ----------------------------------------------------------


def test_trigger_id_opens_one_modal_and_is_then_expired(
    slack: FakeSlack, client: WebClient
) -> None:
    trigger = slack.issue_trigger_id("U1")

    opened = client.views_open(trigger_id=trigger, view=modal(private_metadata="L-1"))

    assert api_error(lambda: client.views_open(trigger_id=trigger, view=modal())) == (
        "expired_trigger_id"
    )
    view = slack.open_views[opened["view"]["id"]]
    assert (view["callback_id"], view["private_metadata"]) == ("new_lead", "L-1")
    assert view["state"] == {"values": {}}


def test_trigger_id_expires_after_its_time_to_live(slack: FakeSlack, client: WebClient) -> None:
    trigger = slack.issue_trigger_id("U1", ttl=0.05)
    time.sleep(0.1)

    assert api_error(lambda: client.views_open(trigger_id=trigger, view=modal())) == (
        "expired_trigger_id"
    )


def test_unknown_trigger_id_is_invalid(client: WebClient) -> None:
    assert api_error(lambda: client.views_open(trigger_id="1.2.nope", view=modal())) == (
        "invalid_trigger_id"
    )


def test_view_update_with_a_stale_hash_is_a_conflict(slack: FakeSlack, client: WebClient) -> None:
    opened = client.views_open(trigger_id=slack.issue_trigger_id(), view=modal())["view"]
    updated = client.views_update(view_id=opened["id"], hash=opened["hash"], view=modal("Step 2"))

    assert updated["view"]["title"]["text"] == "Step 2"
    assert api_error(
        lambda: client.views_update(view_id=opened["id"], hash=opened["hash"], view=modal())
    ) == ("hash_conflict")


def test_views_publish_sets_the_users_home_tab(slack: FakeSlack, client: WebClient) -> None:
    home = {"type": "home", "blocks": [section("*Overdue*: T-5")]}

    client.views_publish(user_id="U1", view=home)

    published = slack.home_view("U1")
    assert published is not None
    assert published["blocks"] == home["blocks"]
    assert api_error(lambda: client.views_publish(user_id="U9", view=home)) == "user_not_found"


# -- users and auth -----------------------------------------------------------------


def test_users_info_returns_the_time_zone(client: WebClient) -> None:
    user = client.users_info(user="U1")["user"]

    assert user["tz"] == "Europe/Berlin"
    assert user["tz_offset"] in (3600, 7200)
    assert user["profile"]["real_name"] == "Alice Example"
    assert user["profile"]["email"] == "alice@example.com"


def test_user_of_another_workspace_is_not_found(client: WebClient) -> None:
    assert api_error(lambda: client.users_info(user="U9")) == "user_not_found"


def test_users_can_be_looked_up_by_email_and_listed_page_by_page(client: WebClient) -> None:
    assert client.users_lookupByEmail(email="BOB@acme.test")["user"]["id"] == "U2"

    first = client.users_list(limit=2)
    second = client.users_list(limit=2, cursor=first["response_metadata"]["next_cursor"])

    ids = [u["id"] for u in first["members"] + second["members"]]
    assert sorted(ids) == ["U1", "U2", "UBOT"]
    assert second["response_metadata"]["next_cursor"] == ""


def test_auth_test_names_the_team_and_bot(client: WebClient) -> None:
    answer = client.auth_test()

    assert (answer["team_id"], answer["user_id"], answer["bot_id"]) == ("T1", "UBOT", "BBOT")
    assert answer["url"] == "https://acme.slack.com/"


def test_unknown_token_is_invalid_auth_and_missing_token_is_not_authed(slack: FakeSlack) -> None:
    assert api_error(WebClient(token="xoxb-nope", base_url=slack.url).auth_test) == "invalid_auth"
    assert api_error(WebClient(base_url=slack.url).auth_test) == "not_authed"


# -- faults and retries ---------------------------------------------------------------


def test_rate_limited_post_is_retried_after_retry_after_by_the_sdk(slack: FakeSlack) -> None:
    client = WebClient(
        token=TOKEN, base_url=slack.url, retry_handlers=[RateLimitErrorRetryHandler()]
    )
    slack.fail_next("chat.postMessage", "ratelimited", retry_after=1)

    started = time.monotonic()
    client.chat_postMessage(channel="C1", text="reminder")

    assert time.monotonic() - started >= 1.0
    assert len(slack.calls_to("chat.postMessage")) == 1  # posted exactly once
    [faulted] = slack.faulted_calls
    assert faulted.fault == Fault.ratelimited(retry_after=1)
    assert len(slack.messages("C1")) == 1


def test_server_error_is_retried_by_the_sdk(slack: FakeSlack) -> None:
    retry = ServerErrorRetryHandler(interval_calculator=FixedValueRetryIntervalCalculator(0.01))
    client = WebClient(token=TOKEN, base_url=slack.url, retry_handlers=[retry])
    slack.fail_next("chat.postMessage", "internal_error")

    client.chat_postMessage(channel="C1", text="reminder")

    assert [c.fault.status for c in slack.faulted_calls if c.fault] == [500]
    assert len(slack.messages("C1")) == 1


def test_fault_plan_can_rate_limit_every_third_call(slack: FakeSlack, client: WebClient) -> None:
    slack.fault_plan(lambda n, method: Fault.ratelimited() if n % 3 == 0 else None)

    def post(text: str) -> str:
        try:
            client.chat_postMessage(channel="C1", text=text)
        except SlackApiError as exc:
            answer = exc.response
            return f"{answer.status_code} {answer['error']} after {answer.headers['Retry-After']}s"
        return "ok"

    outcomes = [post(str(i)) for i in range(6)]

    limited = "429 ratelimited after 1s"
    assert outcomes == ["ok", "ok", limited, "ok", "ok", limited]
    assert len(slack.calls) == 4
    assert len(slack.faulted_calls) == 2


def test_non_json_server_error_surfaces_as_an_api_error(
    slack: FakeSlack, client: WebClient
) -> None:
    slack.fail_next("chat.postMessage", fault=Fault.server_error(503, json_body=False))

    with pytest.raises(SlackApiError) as raised:
        client.chat_postMessage(channel="C1", text="x")

    assert raised.value.response.status_code == 503
    assert slack.messages("C1") == []


def test_dropped_connection_applies_nothing(slack: FakeSlack) -> None:
    client = WebClient(token=TOKEN, base_url=slack.url, retry_handlers=[])
    slack.fail_next("chat.postMessage", fault=Fault.timeout(0.05))

    with pytest.raises(ConnectionError, match="Remote end closed"):
        client.chat_postMessage(channel="C1", text="lost in transit")

    assert slack.messages("C1") == []
    assert slack.calls_to("chat.postMessage") == []


def test_dropped_connection_is_retried_by_the_sdks_connection_error_handler(
    slack: FakeSlack,
) -> None:
    retry = ConnectionErrorRetryHandler(interval_calculator=FixedValueRetryIntervalCalculator(0.01))
    client = WebClient(token=TOKEN, base_url=slack.url, retry_handlers=[retry])
    slack.fail_next("chat.postMessage", fault=Fault.timeout(0.0))

    client.chat_postMessage(channel="C1", text="second time lucky")

    assert [m["text"] for m in slack.messages("C1")] == ["second time lucky"]
    assert len(slack.faulted_calls) == 1


def test_delayed_answer_is_slow_but_applied(slack: FakeSlack, client: WebClient) -> None:
    slack.delay("chat.postMessage", 0.3, times=1)

    started = time.monotonic()
    client.chat_postMessage(channel="C1", text="slow")
    client.chat_postMessage(channel="C1", text="fast")

    assert 0.3 <= time.monotonic() - started < 2
    assert [m["text"] for m in slack.messages("C1")] == ["slow", "fast"]


def test_per_channel_rate_limit_rejects_a_quick_second_post(slack: FakeSlack) -> None:
    slack.post_rate_limit_per_channel = 1.0
    client = WebClient(token=TOKEN, base_url=slack.url)
    client.chat_postMessage(channel="C1", text="first")
    client.chat_postMessage(channel="DU1", text="other channel is fine")

    with pytest.raises(SlackApiError) as raised:
        client.chat_postMessage(channel="C1", text="second")

    assert raised.value.response.status_code == 429
    assert raised.value.response.headers["Retry-After"] == "1"


def test_wait_for_reports_what_it_saw(slack: FakeSlack, client: WebClient) -> None:
    client.auth_test()

    with pytest.raises(AssertionError, match=r"auth\.test:ok"):
        slack.wait_for("chat.postMessage", timeout=0.05)


# -- files and response_url ------------------------------------------------------------


def test_files_upload_v2_uploads_in_three_steps(slack: FakeSlack, client: WebClient) -> None:
    answer = client.files_upload_v2(
        channel="C1", content="name,email\nAda,ada@x.test\n", filename="leads.csv", title="Leads"
    )

    file_id = answer["file"]["id"]
    uploaded = slack.uploaded_files[file_id]
    assert uploaded.content == b"name,email\nAda,ada@x.test\n"
    assert (uploaded.completed, uploaded.title, uploaded.channel_id) == (True, "Leads", "C1")
    assert [c.method for c in slack.calls] == [
        "files.getUploadURLExternal",
        "upload",
        "files.completeUploadExternal",
    ]
    assert slack.messages("C1")[0]["files"][0]["id"] == file_id


def test_completing_an_upload_that_never_happened_fails(client: WebClient) -> None:
    file_id = client.files_getUploadURLExternal(filename="x.csv", length=3)["file_id"]

    assert api_error(
        lambda: client.files_completeUploadExternal(files=[{"id": file_id, "title": "x"}])
    ) == ("file_not_found")


def test_response_url_posts_are_recorded(slack: FakeSlack) -> None:
    url = slack.response_url("T1", channel_id="C1", user_id="U1")

    for body in (
        {"text": "Only you can see this"},
        {"response_type": "in_channel", "text": "Deal D-2 won"},
    ):
        request = urllib.request.Request(
            url, data=json.dumps(body).encode(), headers={"Content-Type": "application/json"}
        )
        with urllib.request.urlopen(request) as response:
            assert json.load(response) == {"ok": True}

    calls = slack.calls_to("response_url")
    assert [c.args["text"] for c in calls] == ["Only you can see this", "Deal D-2 won"]
    assert calls[0].path.startswith("/response/")
    assert [m["text"] for m in slack.ephemerals(user="U1")] == ["Only you can see this"]
    assert [m["text"] for m in slack.messages("C1")] == ["Deal D-2 won"]
