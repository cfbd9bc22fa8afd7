"""Small things people notice: the assignee list of the incident's team, a full
"Incident created" event, a favicon, required fields marked."""

from __future__ import annotations

import html
import re

from tests.conftest import csrf_token_from


def options(page: str, select_id: str) -> list[str]:
    match = re.search(rf'<select[^>]*id="{select_id}"[^>]*>(.*?)</select>', page, re.S)
    assert match, select_id
    return [html.unescape(t).strip() for t in re.findall(r"<option[^>]*>([^<]*)<", match.group(1))]


def test_the_assignee_list_holds_the_chosen_teams_members(
    client, make_team, make_user, sign_in
) -> None:
    payments, search = make_team("Payments"), make_team("Search")
    responder = make_user("both@example.com", teams=[payments, search], first_name="Bo")
    make_user("pia@example.com", teams=[payments], first_name="Pia", last_name="Pay")
    make_user("sam@example.com", teams=[search], first_name="Sam", last_name="Search")
    sign_in(responder.email)

    first = client.get("/incidents/new").text  # Payments comes first by name
    assert options(first, "assignee_id") == ["Unassigned", responder.full_name, "Pia Pay"]

    chosen = client.get(f"/incidents/new?team_id={search.id}").text
    assert options(chosen, "assignee_id") == ["Unassigned", responder.full_name, "Sam Search"]
    assert re.search(
        rf'<option[^>]*selected[^>]*value="{search.id}"|<option[^>]*value="{search.id}"[^>]*selected',
        chosen,
    )

    # Someone outside the chosen team is refused at the field; the list then fits the team.
    sam = [o for o in re.findall(r'<option value="([^"]+)">Sam Search<', chosen)][0]
    refused = client.post(
        "/incidents/new",
        data={
            "csrf_token": csrf_token_from(first),
            "title": "Slow search",
            "priority": "P3",
            "team_id": payments.id,
            "assignee_id": sam,
        },
    )
    assert refused.status_code == 422
    assert 'id="assignee_id-error"' in refused.text  # refused at the field
    assert options(refused.text, "assignee_id") == ["Unassigned", responder.full_name, "Pia Pay"]


def test_incident_created_lists_everything_it_was_opened_with(
    client, make_team, make_user, sign_in
) -> None:
    team = make_team("Payments")
    user = make_user("mia@example.com", teams=[team], first_name="Mia", last_name="Member")
    sign_in(user.email)
    page = client.get("/incidents/new").text
    response = client.post(
        "/incidents/new",
        data={
            "csrf_token": csrf_token_from(page),
            "title": "Checkout down",
            "description": "Card payments fail with 502.",
            "priority": "P1",
            "team_id": team.id,
            "assignee_id": user.id,
            "metadata": '{"region": "eu-west-1"}',
        },
    )
    assert response.status_code == 303
    detail = html.unescape(client.get(response.headers["Location"]).text)
    match = re.search(r'<li class="event event-incident_created">(.*?)</ul>', detail, re.S)
    assert match
    created = match.group(1)
    for expected in (
        "assignee</span>:",
        "mia@example.com",
        "description</span>:",
        "Card payments fail with 502.",
        "metadata</span>:",
        '{"region": "eu-west-1"}',
    ):
        assert expected in created, expected


def test_pages_have_a_favicon_served_by_the_app(client) -> None:
    page = client.get("/sign-in").text
    href = re.search(r'<link rel="icon" type="image/svg\+xml" href="([^"]+)">', page)
    assert href and href.group(1).startswith("/static/")
    icon = client.get(href.group(1))
    assert icon.status_code == 200 and icon.mimetype == "image/svg+xml"
    assert b"<svg" in icon.data


def test_required_fields_carry_required(client, make_user, sign_in) -> None:
    admin = make_user("boss@example.com", admin=True)
    sign_in(admin.email)
    page = client.get("/workflows/new").text
    assert re.search(r'<textarea[^>]*id="description"[^>]*required', page)
