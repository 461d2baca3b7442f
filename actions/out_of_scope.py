"""Neighbouring services (land, tax, traffic fines, visas, ...): a question about one is out of
scope, but the citizen should learn where to go. The NLU tags the service as `other_service`
(values in docs/CONTRACT.md and config.yml's EntityValueFilter); each value has a reply in
bot/domain/out_of_scope.yml, which the communications team edits. The FAQ action
(actions/faq.py) asks this module once no published entry answers."""

from __future__ import annotations

from rasa_sdk import Tracker

from actions.common import latest_entity_values

ENTITY = "other_service"
# Written out (not built from the value) so `git grep` and the console's "where used" find them;
# tests/actions/test_out_of_scope.py checks this table against the config, contract and domain.
RESPONSES: dict[str, str] = {
    "land": "utter_out_of_scope_land",
    "tax": "utter_out_of_scope_tax",
    "traffic_fine": "utter_out_of_scope_traffic_fine",
    "visa_foreigner": "utter_out_of_scope_visa_foreigner",
    "school": "utter_out_of_scope_school",
    "university": "utter_out_of_scope_university",
    "bank": "utter_out_of_scope_bank",
    "insurance_private": "utter_out_of_scope_insurance_private",
    "social_insurance": "utter_out_of_scope_social_insurance",
    "utilities": "utter_out_of_scope_utilities",
    "vehicle_registration": "utter_out_of_scope_vehicle_registration",
    "construction": "utter_out_of_scope_construction",
    "company": "utter_out_of_scope_company",
    "court_police": "utter_out_of_scope_court_police",
}


def where_to_go(tracker: Tracker) -> str | None:
    """The reply for the first neighbouring service the latest message names, if any."""
    for value in latest_entity_values(tracker, ENTITY):
        if value in RESPONSES:
            return RESPONSES[value]
    return None
