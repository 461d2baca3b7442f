"""The development REST channel: namespaced, closed outside sandbox mode, bounded."""

from __future__ import annotations

import pytest

from bot.channels.rest import DevRestInput, RestSettings
from tests.channels.channel_fakes import RecordingRasa, serve_channel

URL = "/webhooks/rest/webhook"


async def test_the_client_chosen_sender_stays_in_the_rest_namespace() -> None:
    rasa = RecordingRasa()
    async with serve_channel(DevRestInput(RestSettings(sandbox_mode=True)), rasa) as client:
        for sender in ("telegram:42", "web:abc", "zalo:7", "e2e-1"):
            answer = await client.post(
                URL, json={"sender": sender, "message": "xin chào", "input_channel": "telegram"}
            )
            assert answer.status_code == 200
    assert [m.sender_id for m in rasa.messages] == [
        "rest:telegram:42",
        "rest:web:abc",
        "rest:zalo:7",
        "rest:e2e-1",
    ]
    assert {m.input_channel for m in rasa.messages} == {"rest"}


async def test_outside_sandbox_mode_it_is_off() -> None:
    rasa = RecordingRasa()
    async with serve_channel(DevRestInput(RestSettings(sandbox_mode=False)), rasa) as client:
        answer = await client.post(URL, json={"sender": "x", "message": "xin chào"})
    assert answer.status_code == 403
    assert rasa.messages == []


@pytest.mark.parametrize("sandbox_mode", [False, True])
async def test_with_a_token_every_request_must_carry_it(sandbox_mode: bool) -> None:
    rasa = RecordingRasa()
    channel = DevRestInput(RestSettings(sandbox_mode=sandbox_mode, token="s3cret-token"))
    async with serve_channel(channel, rasa) as client:
        body = {"sender": "x", "message": "xin chào"}
        missing = await client.post(URL, json=body)
        wrong = await client.post(URL, json=body, headers={"Authorization": "Bearer guess"})
        right = await client.post(URL, json=body, headers={"Authorization": "Bearer s3cret-token"})
    assert (missing.status_code, wrong.status_code, right.status_code) == (401, 401, 200)
    assert len(rasa.messages) == 1


async def test_bad_and_oversized_bodies_never_reach_rasa() -> None:
    rasa = RecordingRasa()
    async with serve_channel(DevRestInput(RestSettings(sandbox_mode=True)), rasa) as client:
        huge = await client.post(URL, json={"sender": "x", "message": "a" * 70_000})
        no_sender = await client.post(URL, json={"message": "xin chào"})
        not_json = await client.post(
            URL, content=b"\xff\xfe", headers={"content-type": "application/json"}
        )
        not_text = await client.post(URL, json={"sender": "x", "message": {"a": 1}})
    assert huge.status_code == 413
    assert no_sender.status_code == not_json.status_code == not_text.status_code == 400
    assert rasa.messages == []
