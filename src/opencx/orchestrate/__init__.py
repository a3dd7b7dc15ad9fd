"""Acting on what OpenCX knows: triggers, the contact policy, next best action, delivery.

- `triggers`: when something happens (or on a schedule), propose an action for a person;
- `policy`, `state`, `consent`, `moments`: may this contact go to this person now, and why;
- `decisions`: the gate every contact passes, and the decisions log;
- `outbox`, `adapters`: at-least-once delivery with idempotency keys, retries, dead letters;
- `actions`, `nba`: the next-best-action catalogue and its ranking for one person;
- `simulate`: a dry run of a policy over the last days;
- `engine`: the pieces put together for the server and the CLI.
"""

from __future__ import annotations

from opencx.orchestrate.actions import ActionCatalogue, load_actions, parse_actions, save_actions
from opencx.orchestrate.adapters import (
    Adapter,
    DeliveryError,
    LogAdapter,
    SmtpAdapter,
    WebhookAdapter,
    adapters_from_settings,
    verify_signature,
)
from opencx.orchestrate.consent import ConsentRecord, consents_of
from opencx.orchestrate.decisions import (
    decision_counts,
    decisions_of,
    due_holds,
    gate,
    list_decisions,
)
from opencx.orchestrate.engine import delivery_round, policy_check, recommend, trigger_round
from opencx.orchestrate.nba import Recommendation, Signals, next_best_actions, person_signals
from opencx.orchestrate.outbox import (
    DeliveryReport,
    OutboxItem,
    deliver_due,
    enqueue,
    list_outbox,
    outbox_counts,
    outbox_of,
    retry,
)
from opencx.orchestrate.policy import (
    ContactPolicy,
    Decision,
    Proposal,
    decide,
    default_policy,
    load_policy,
    parse_policy,
    save_policy,
)
from opencx.orchestrate.simulate import SimulationReport, simulate
from opencx.orchestrate.state import PersonState, person_state, person_states
from opencx.orchestrate.triggers import (
    Trigger,
    TriggerRun,
    delete_trigger,
    get_trigger,
    list_triggers,
    parse_trigger,
    run_triggers,
    save_trigger,
)

__all__ = [
    "ActionCatalogue",
    "Adapter",
    "ConsentRecord",
    "ContactPolicy",
    "Decision",
    "DeliveryError",
    "DeliveryReport",
    "LogAdapter",
    "OutboxItem",
    "PersonState",
    "Proposal",
    "Recommendation",
    "Signals",
    "SimulationReport",
    "SmtpAdapter",
    "Trigger",
    "TriggerRun",
    "WebhookAdapter",
    "adapters_from_settings",
    "consents_of",
    "decide",
    "decision_counts",
    "decisions_of",
    "default_policy",
    "delete_trigger",
    "deliver_due",
    "delivery_round",
    "due_holds",
    "enqueue",
    "gate",
    "get_trigger",
    "list_decisions",
    "list_outbox",
    "list_triggers",
    "load_actions",
    "load_policy",
    "next_best_actions",
    "outbox_counts",
    "outbox_of",
    "parse_actions",
    "parse_policy",
    "parse_trigger",
    "person_signals",
    "person_state",
    "person_states",
    "policy_check",
    "recommend",
    "retry",
    "run_triggers",
    "save_actions",
    "save_policy",
    "save_trigger",
    "simulate",
    "trigger_round",
    "verify_signature",
]
