from __future__ import annotations

from rasa_sdk.executor import CollectingDispatcher

from actions.language import ActionSwitchLanguage
from tests.actions.helpers import make_tracker, slot_events


async def test_switch_language_sets_or_toggles() -> None:
    asked = make_tracker(
        {"language": "vi"},
        intent="switch_language",
        entities=[{"entity": "language", "value": "en"}],
    )
    assert slot_events(await ActionSwitchLanguage().run(CollectingDispatcher(), asked, {})) == {
        "language": "en"
    }
    toggle = make_tracker({"language": "en"}, intent="switch_language")
    assert slot_events(await ActionSwitchLanguage().run(CollectingDispatcher(), toggle, {})) == {
        "language": "vi"
    }
