"""A token's secret typed into a filter box of the audit log (its "Token" box asks for a
partial token; a whole one is what people have at hand)."""

from __future__ import annotations

from orgs.models import AuditExport
from tests.factories import HTMX, issue


def test_a_secret_in_an_audit_filter_box_is_not_searched_shown_or_kept_live(as_alice, org_admin):
    """It came back in the box, the "No token ... is named like" note and every link of the
    page, and stayed live."""
    from tokens.models import ApiToken

    for box in ("token", "actor", "object"):
        pasted = issue(org_admin, name=f"Looked up by {box}")
        response = as_alice.get(f"/o/acme/audit/?{box}={pasted.secret}&action=token.created")
        assert response.status_code == 302, box
        assert response["Location"] == "/o/acme/audit/?action=token.created"
        page = as_alice.get(response["Location"]).content.decode()
        assert pasted.secret not in page
        assert "That was an API token, not a search" in page
        assert ApiToken.objects.get(pk=pasted.token.pk).leaked_at is not None
    pasted = issue(org_admin, name="Looked up as you type")
    response = as_alice.get(f"/o/acme/audit/?token={pasted.secret}", **HTMX)
    assert response["HX-Redirect"] == "/o/acme/audit/"
    assert pasted.secret not in response.content.decode()


def test_a_secret_is_never_kept_in_an_export_s_query(as_alice, org_admin):
    """The export offer and "Prepare it" kept the filter's query, secret and all, in the
    database and showed it in the list of exports."""
    from tokens.models import ApiToken

    pasted = issue(org_admin, name="Exported")
    response = as_alice.get(f"/o/acme/audit/export.csv?token={pasted.secret}")
    assert response.status_code == 302 and pasted.secret not in response["Location"]
    pasted = issue(org_admin, name="Prepared")
    response = as_alice.post("/o/acme/audit/exports/", {"query": f"token={pasted.secret}"})
    assert response.status_code == 302
    assert not AuditExport.objects.filter(query__contains="kwo_").exists()
    assert pasted.secret not in as_alice.get(response["Location"]).content.decode()
    assert ApiToken.objects.get(pk=pasted.token.pk).leaked_at is not None
    # A made-up one is refused alike; short token-like text still filters.
    assert as_alice.get("/o/acme/audit/?token=kwo_" + "A" * 46).status_code == 302
    assert as_alice.get("/o/acme/audit/?token=kwo_").status_code == 200
