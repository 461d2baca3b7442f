"""The `language` slot's custom mapping (`action_detect_language`), answered inside Rasa.

Rasa runs a custom slot mapping's action after every citizen message. For `language` that was a
round trip to the action server on every turn (the whole tracker serialised, sent, read back)
only to copy the language the NLU found (nlu/components/language.py puts it in the parse
result) into the slot: a fifth of a message's action-server traffic for a comparison. Here Rasa
answers that one mapping itself; every other custom action still goes to the action server.

The rule: the NLU's `language`, when it is one of the slot's values and differs from the slot;
nothing when the text does not say (a code, "ok"), or when the citizen asked to switch language
(`action_switch_language` decides then).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from rasa.shared.core.domain import Domain
    from rasa.shared.core.events import Event
    from rasa.shared.core.trackers import DialogueStateTracker

ACTION = "action_detect_language"
SLOT = "language"
SWITCH_INTENT = "switch_language"


def detected_language(tracker: DialogueStateTracker, domain: Domain) -> list[Event]:
    from rasa.shared.core.events import SlotSet

    message = tracker.latest_message
    if message is None or (message.intent or {}).get("name") == SWITCH_INTENT:
        return []
    values: list[Any] = next(
        (getattr(slot, "values", []) for slot in domain.slots if slot.name == SLOT), []
    )
    detected = message.parse_data.get(SLOT)  # type: ignore[attr-defined]
    if detected in values and detected != tracker.get_slot(SLOT):
        return [SlotSet(SLOT, detected)]
    return []


def install_in_process_language_slot() -> None:
    from rasa.core.actions.action import ActionExtractSlots

    run_custom = ActionExtractSlots._run_custom_action
    if getattr(run_custom, "_in_process", False):
        return

    async def run(
        self: ActionExtractSlots,
        custom_action: str,
        output_channel: Any,
        nlg: Any,
        tracker: DialogueStateTracker,
        domain: Domain,
    ) -> list[Event]:
        if custom_action == ACTION:
            return detected_language(tracker, domain)
        return await run_custom(self, custom_action, output_channel, nlg, tracker, domain)

    run._in_process = True  # type: ignore[attr-defined]
    ActionExtractSlots._run_custom_action = run  # type: ignore[method-assign]
