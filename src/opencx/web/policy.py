"""The Contact policy page: the rules, the triggers, the decisions stream, the outbox and
the dry run of a policy over the last days."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Annotated, Any

from fastapi import APIRouter, Form, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from opencx.errors import InvalidInput, NotFound
from opencx.orchestrate.decisions import decision_counts, list_decisions
from opencx.orchestrate.outbox import list_outbox, outbox_counts, retry
from opencx.orchestrate.policy import ContactPolicy, load_policy, parse_policy, save_policy
from opencx.orchestrate.simulate import DROPPED, HELD, OUTCOMES, SENT, SimulationReport, simulate
from opencx.orchestrate.triggers import delete_trigger, list_triggers, save_trigger
from opencx.store import get_document
from opencx.web import _charts
from opencx.web.app import Viewer, _acting, _page, _viewer

router = APIRouter(include_in_schema=False)
OUTCOME_WORDS = {"send": "sent", "hold": "held", "drop": "dropped"}
EXAMPLE_TRIGGER = """id: order-thanks
name: Thank-you email after an order
when: {event: Order Completed, channel: web}
action:
  type: message
  channel: email
  purpose: transactional
  subject: Thanks for your order
  text: "Hi $first_name, order $order_id is on its way."
"""


def _summary(policy: ContactPolicy) -> list[tuple[str, str]]:
    """The policy in sentences, for people who do not read YAML."""
    budget = policy.budget
    lines = [
        (
            "One budget per person",
            f"at most {budget.max} contacts per {_span(budget.per)} across every channel "
            f"({', '.join(budget.purposes)} together); when full: {budget.when_full}",
        )
    ]
    for channel, cap in sorted(policy.channel_caps.items()):
        lines.append((f"{channel} cap", f"at most {cap.max} per {_span(cap.per)}"))
    quiet = policy.quiet_hours
    lines.append(
        (
            "Quiet hours",
            f"{quiet.start:%H:%M} to {quiet.end:%H:%M} in the customer's time zone "
            f"(default {policy.default_timezone})"
            if quiet
            else "none",
        )
    )
    consent = ", ".join(
        f"{p}: {rule.replace('_', '-')}" for p, rule in policy.consent.defaults.items()
    )
    lines += [
        ("Consent without a record", consent),
        ("Survey fatigue", f"at least {_span(policy.survey_fatigue.min_gap)} between surveys"),
        ("While a case is open", f"no {', '.join(policy.open_case.blocks) or 'suppression'}"),
        (
            "After a detractor answer",
            f"only {', '.join(policy.after_detractor.allow)} for "
            f"{_span(policy.after_detractor.days)}",
        ),
        ("Transactional messages", "bypass caps and quiet hours, never a consent withdrawal"),
    ]
    return lines


def _span(delta: timedelta) -> str:
    days = delta.total_seconds() / 86400
    if days >= 1 and days == int(days):
        return f"{int(days)} day" + ("s" if days != 1 else "")
    return f"{delta.total_seconds() / 3600:g} hours"


def _report_view(report: SimulationReport) -> dict[str, Any]:
    def rows(groups: dict[str, Any], limit: int = 25) -> list[tuple[str, dict[str, int]]]:
        ranked = sorted(groups.items(), key=lambda kv: -sum(kv[1].values()))
        return [(name, {o: counts[o] for o in OUTCOMES}) for name, counts in ranked[:limit]]

    return {
        "report": report,
        "outcomes": OUTCOMES,
        "by_source": rows(report.by_source),
        "by_segment": rows(report.by_segment),
        "by_rule": rows(report.by_rule),
        "by_purpose": rows(report.by_purpose),
        "chart": _charts.bar_chart(
            [
                ("would be sent", float(report.outcomes[SENT])),
                ("held, then sent", float(report.outcomes[HELD])),
                ("dropped", float(report.outcomes[DROPPED])),
                ("actually sent", float(report.actual_sent)),
            ]
        ),
    }


def _policy_page(
    request: Request,
    viewer: Viewer,
    *,
    outcome: str = "",
    text: str | None = None,
    error: str | None = None,
    simulation: dict[str, Any] | None = None,
    trigger_text: str = "",
    trigger_error: str | None = None,
    status_code: int = 200,
) -> HTMLResponse:
    con = viewer.con
    now = datetime.now(UTC)
    policy = load_policy(con)
    saved = get_document(con, "policy", "default")
    counts = decision_counts(con, now - timedelta(days=7))
    decisions = list_decisions(con, outcome=outcome or None, limit=50)
    page = _page(
        request, viewer, "policy.html",
        policy=policy, summary=_summary(policy),
        text=text if text is not None else (saved.body if saved else policy.to_yaml()),
        saved_by=saved.updated_by if saved else None, error=error,
        triggers=list_triggers(con), decisions=decisions, outcome=outcome,
        outcome_words=OUTCOME_WORDS, counts=counts,
        rules_chart=_charts.bar_chart([(r, float(n)) for r, n in counts["rules"].items()]),
        outbox=outbox_counts(con), dead=list_outbox(con, status="dead", limit=20),
        simulation=simulation, now=now, trigger_text=trigger_text or EXAMPLE_TRIGGER,
        trigger_error=trigger_error,
    )  # fmt: skip
    page.status_code = status_code
    return page


@router.get("/policy")
def policy_page(request: Request, outcome: str = "") -> HTMLResponse:
    viewer = _viewer(request, "analyst")
    if outcome not in ("", *OUTCOME_WORDS):
        raise InvalidInput(f"outcome must be one of {', '.join(OUTCOME_WORDS)}, got {outcome!r}")
    return _policy_page(request, viewer, outcome=outcome)


@router.post("/policy")
def save_policy_form(
    request: Request, text: Annotated[str, Form()], csrf: Annotated[str, Form()] = ""
) -> Response:
    viewer = _acting(request, "admin", csrf)
    try:
        save_policy(viewer.con, text, by=viewer.user.email)
    except InvalidInput as exc:
        return _policy_page(request, viewer, text=text, error=exc.message, status_code=400)
    return RedirectResponse("/policy", 303)


@router.post("/policy/simulate")
def simulate_form(
    request: Request,
    days: Annotated[int, Form()] = 30,
    text: Annotated[str, Form()] = "",
    csrf: Annotated[str, Form()] = "",
) -> Response:
    """Dry run of the policy in the editor (saved or not) over the last `days`."""
    viewer = _acting(request, "analyst", csrf)
    try:
        policy = parse_policy(text) if text.strip() else load_policy(viewer.con)
        report = simulate(viewer.con, policy, days=days)
    except InvalidInput as exc:
        return _policy_page(request, viewer, text=text, error=exc.message, status_code=400)
    return _policy_page(request, viewer, text=text or None, simulation=_report_view(report))


@router.post("/policy/triggers")
def save_trigger_form(
    request: Request, trigger: Annotated[str, Form()], csrf: Annotated[str, Form()] = ""
) -> Response:
    """Create or replace a trigger from its YAML (it acts on events from now on)."""
    viewer = _acting(request, "admin", csrf)
    try:
        save_trigger(viewer.con, trigger, by=viewer.user.email)
    except (InvalidInput, NotFound) as exc:
        return _policy_page(
            request, viewer, trigger_text=trigger, trigger_error=exc.message, status_code=400
        )
    return RedirectResponse("/policy#triggers-h", 303)


@router.post("/policy/triggers/{trigger_id}/delete")
def delete_trigger_form(
    request: Request, trigger_id: str, csrf: Annotated[str, Form()] = ""
) -> Response:
    viewer = _acting(request, "admin", csrf)
    delete_trigger(viewer.con, trigger_id)
    return RedirectResponse("/policy#triggers-h", 303)


@router.post("/policy/outbox/{item_id}/retry")
def retry_form(request: Request, item_id: str, csrf: Annotated[str, Form()] = "") -> Response:
    viewer = _acting(request, "admin", csrf)
    retry(viewer.con, item_id, datetime.now(UTC))
    return RedirectResponse("/policy", 303)
