"""Console: **Report a leaked token**, for anyone signed in. The same processing as the API's
report endpoint (``tokens.leaks``) and the same neutral answer: the page never says whether a
pasted token matched, since the person may not be allowed to know the token exists."""

from __future__ import annotations

from django import forms
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.utils.cache import add_never_cache_headers
from django.views.decorators.debug import sensitive_post_parameters, sensitive_variables
from django.views.decorators.http import require_http_methods

from access import rules
from orgs import names
from orgs.models import User
from orgs.principals import Principal
from policies.addresses import client_address
from tokens import leaks
from tokens.leaks_api import MAX_ITEMS, report_limit


class ReportLeakForm(forms.Form):
    tokens = forms.CharField(
        label="Tokens",
        widget=forms.Textarea(attrs={"rows": 4, "spellcheck": "false", "autocomplete": "off"}),
        help_text=f"One per line, at most {MAX_ITEMS}.",
    )
    where = forms.CharField(
        label="Where did you find it?",
        required=False,
        max_length=leaks.URL_MAX_LENGTH,
        help_text="A web address, or a few words such as “the CI log of project X”.",
    )

    def clean_tokens(self) -> list[str]:
        lines = [line.strip() for line in self.cleaned_data["tokens"].splitlines() if line.strip()]
        if len(lines) > MAX_ITEMS:
            raise forms.ValidationError(f"At most {MAX_ITEMS} tokens at once.")
        return lines


@login_required
@sensitive_post_parameters("tokens")
@sensitive_variables("form", "reports")
@require_http_methods(["GET", "POST"])
def report_leak(request: HttpRequest) -> HttpResponse:
    address = client_address(request)
    user = request.user if isinstance(request.user, User) else None
    principal = Principal(user=user, organization=None, address=address)
    if not rules.may_report_leaks(principal):
        raise PermissionDenied("Sign in to report a leaked token.")
    form = ReportLeakForm(request.POST if request.method == "POST" else None)
    context: dict[str, object] = {"form": form}
    status = 200
    if request.method == "POST" and form.is_valid():
        retry_after = report_limit.retry_after(address)
        if retry_after is not None:
            context["throttled"] = retry_after
            status = 429
        else:
            where = form.cleaned_data["where"].strip()
            is_url = where.startswith(("https://", "http://"))
            reports = [
                leaks.LeakReport(
                    token=token,
                    url=where if is_url else "",
                    source=where if not is_url else "reported in the console",
                )
                for token in form.cleaned_data["tokens"]
            ]
            leaks.process_reports(
                reports, reporter_address=address, reported_by=request.user.get_username()
            )
            context["received"] = len(reports)
            context["form"] = ReportLeakForm()  # never echo what was pasted
    if context["form"] is form and request.method == "POST":
        # Answered with errors (or throttled): the secrets are reported only once the form is
        # valid, so none is shown back, in either field, meanwhile.
        data = request.POST.copy()
        data["tokens"] = ""
        data["where"] = names.TOKEN_SHAPE.sub("", data.get("where", ""))
        form.data = data  # the errors stay, found on what was sent
    response = render(request, "tokens/report_leak.html", context, status=status)
    add_never_cache_headers(response)
    return response
