"""The AsyncAPI 3.0 document of declared channels, validated against the official JSON schema.

The schema is vendored in tests/realtime/data (see data/README.md: AsyncAPI Initiative,
Apache-2.0), so the test runs offline.
"""

from __future__ import annotations

import copy
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import jsonschema
import pytest

from brillo.realtime import Hub
from brillo.realtime.asyncapi import document
from brillo.realtime.channels import Channel, Channels
from brillo.testclient import TestClient
from examples.realtime.channels_chat import create_app
from tests.realtime._channels_app import build

SCHEMA = json.loads(
    (Path(__file__).parent / "data" / "asyncapi-3.0.0.schema.json").read_text("utf-8")
)
VALIDATOR = jsonschema.Draft7Validator(SCHEMA)


def errors(doc: dict[str, Any]) -> list[str]:
    return [f"{list(e.absolute_path)}: {e.message}" for e in VALIDATOR.iter_errors(doc)]


@pytest.fixture
def doc() -> dict[str, Any]:
    hub = Hub("memory://", envelope=True, presence_events=True)
    app, _, _ = build(hub)
    with TestClient(app) as client:
        response = client.get("/asyncapi.json")
    assert response.headers["content-type"] == "application/json"
    result: dict[str, Any] = response.json()
    return result


def test_the_served_document_is_valid_asyncapi_3(doc: dict[str, Any]) -> None:
    assert errors(doc) == []
    assert doc["asyncapi"] == "3.0.0"
    assert doc["channels"]["room"]["address"] == "room:{id}"
    assert doc["channels"]["room"]["parameters"] == {
        "id": {"description": "the {id} part of the room name"}
    }
    assert doc["channels"]["lobby"]["address"] == "lobby"


def test_operations_messages_and_schemas_come_from_the_declarations(doc: dict[str, Any]) -> None:
    operations = doc["operations"]
    say = operations["room.say"]
    assert say["action"] == "receive"
    assert say["summary"] == "Say something."
    assert say["messages"] == [{"$ref": "#/channels/room/messages/say"}]
    assert say["reply"]["messages"] == [{"$ref": "#/channels/room/messages/sayReply"}]
    assert operations["room.event.said"]["action"] == "send"
    assert operations["room.join"]["summary"] == "Welcome to the room."
    assert "room.presence" in operations
    assert "lobby.presence" not in operations  # the lobby tracks no presence
    messages = doc["components"]["messages"]
    push = messages["room.say"]["payload"]
    assert push["properties"]["event"] == {"const": "say"}
    assert push["properties"]["payload"] == {"$ref": "#/components/schemas/Say"}
    schemas = doc["components"]["schemas"]
    assert schemas["Say"]["properties"]["text"] == {
        "type": "string",
        "minLength": 1,
        "maxLength": 100,
    }
    assert schemas["Move"]["required"] == ["x", "y"]  # a dataclass
    assert schemas["Tag"]["properties"]["name"] == {"type": "string"}  # a TypedDict
    count = messages["room.count"]["payload"]["properties"]["payload"]
    assert count == {"type": "integer"}
    join_reply = messages["room.joinReply"]["payload"]["properties"]["payload"]
    assert join_reply == {"$ref": "#/components/schemas/Welcome"}
    said = messages["room.event.said"]["payload"]["properties"]["data"]
    assert said["properties"]["event"] == {"const": "said"}
    # Every reference points at something that exists.
    text = json.dumps(doc)
    for ref in {part.split('"')[0] for part in text.split('"$ref": "#/')[1:]}:
        node: Any = doc
        for key in ref.split("/"):
            node = node[key]


def test_the_validator_rejects_broken_documents(doc: dict[str, Any]) -> None:
    # The check has teeth: the same document, broken in three ways, fails it.
    breakers: list[Callable[[dict[str, Any]], None]] = [
        lambda d: d.__setitem__("asyncapi", "2.6.0"),
        lambda d: d["operations"]["room.say"].__setitem__("action", "publish"),
        lambda d: d["channels"]["room"].__setitem__("messages", ["not", "a", "map"]),
    ]
    for breaking in breakers:
        broken = copy.deepcopy(doc)
        breaking(broken)
        assert errors(broken)


def test_the_examples_document_and_info(tmp_path: Path) -> None:
    app = create_app("memory://")
    with TestClient(app) as client:
        served = client.get("/asyncapi.json").json()
    assert errors(served) == []
    assert served["info"]["title"] == "brillo chat rooms"
    hub = Hub("memory://", envelope=True)
    bare = document(
        Channels(hub, [Channel("x", presence=False)]),
        title="t",
        version="2",
        description="d",
        servers={"prod": {"host": "example.org", "protocol": "wss"}},
    )
    assert bare["info"] == {"title": "t", "version": "2", "description": "d"}
    assert errors(bare) == []
