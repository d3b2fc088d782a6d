"""Console pages for IP filters and the security policy. They read a form, call a service, and
render a page or the partial an HTMX request needs."""

from __future__ import annotations

from typing import Any

from django.contrib import messages
from django.core.exceptions import PermissionDenied, ValidationError
from django.db.models import Count
from django.http import HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from access import rules
from access.errors import NotFound, VersionConflict
from orgs.console import OrganizationRequest, organization_view
from policies import rules as ip_rules
from policies import services
from policies.forms import AddressTestForm, IpFilterForm, ScopePolicyForm
from policies.models import SCOPES, IpFilter, SecurityPolicy
from tokens.console import withhold_pasted_tokens

# Where someone may paste a secret into a filter's form: never shown back (tokens.console).
FILTER_TEXT_FIELDS = ("name", "description", "rules_text")


def _require(request: OrganizationRequest, allowed: bool, permission: str) -> None:
    """Refuse the page (403) unless the access layer said yes."""
    if not allowed:
        raise PermissionDenied(f"This page needs the permission {permission}.")


def _visible_filter(request: OrganizationRequest, filter_id: int) -> IpFilter:
    return get_object_or_404(
        IpFilter.objects.visible_to(request.principal).select_related(
            "organization", "created_by", "modified_by"
        ),
        pk=filter_id,
    )


def _policy(request: OrganizationRequest) -> SecurityPolicy:
    return (
        SecurityPolicy.objects.with_scopes()
        .select_related("modified_by")
        .get(organization=request.organization)
    )


# IP filters ---------------------------------------------------------------------------------


@require_GET
@organization_view
def ip_filter_list(request: OrganizationRequest) -> HttpResponse:
    _require(request, rules.may_read_ip_filters(request.principal), "api.ip-filters.read")
    policy = _policy(request)
    enforced: dict[int, list[str]] = {}
    for scope in SCOPES:
        filter_id = policy.for_scope(scope).enforced_ip_filter_id
        if filter_id is not None:
            enforced.setdefault(filter_id, []).append(scope)
    # Each filter with the scopes whose policy enforces it.
    filters = [
        (ip_filter, enforced.get(ip_filter.pk, []))
        for ip_filter in IpFilter.objects.visible_to(request.principal)
        .annotate(token_count=Count("api_tokens"))
        .order_by("name")
    ]
    return render(
        request,
        "policies/ip_filter_list.html",
        {
            "section": "ip-filters",
            "filters": filters,
            "can_write": rules.may_write_ip_filters(request.principal),
        },
    )


@require_http_methods(["GET", "POST"])
@organization_view
def ip_filter_create(request: OrganizationRequest) -> HttpResponse:
    _require(request, rules.may_write_ip_filters(request.principal), "api.ip-filters.write")
    form = IpFilterForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        try:
            ip_filter = services.create_ip_filter(
                actor=request.principal,
                organization=request.organization,
                name=form.cleaned_data["name"],
                description=form.cleaned_data["description"],
                rules_text=form.cleaned_data["rules_text"],
            )
        except ValidationError as error:
            form.add_service_errors(error)
        else:
            messages.success(request, f"IP filter {ip_filter.name} created.")
            return redirect("policies:ip-filter-detail", request.organization.slug, ip_filter.pk)
    withhold_pasted_tokens(request.principal, form, FILTER_TEXT_FIELDS)
    return render(
        request,
        "policies/ip_filter_form.html",
        {"section": "ip-filters", "form": form, "ip_filter": None},
    )


@require_POST
@organization_view
def ip_filter_check(request: OrganizationRequest) -> HttpResponse:
    """Check rules as they are typed, saving nothing: the editor's per-line errors."""
    _require(request, rules.may_read_ip_filters(request.principal), "api.ip-filters.read")
    form = IpFilterForm(request.POST)
    form.is_valid()
    checked_rules: list[ip_rules.Rule] = []
    try:
        checked_rules = ip_rules.parse_rules(
            request.POST.get("rules_text", "")[: services.RULES_MAX_LENGTH]
        )
    except ip_rules.RuleSyntaxError as error:
        form.line_errors = {rule_error.line: rule_error.message for rule_error in error.errors}
    return render(
        request,
        "policies/ip_filter_form.html#rule-check",
        {"form": form, "checked_rules": checked_rules, "checked": True},
    )


@require_GET
@organization_view
def ip_filter_detail(request: OrganizationRequest, filter_id: int) -> HttpResponse:
    _require(request, rules.may_read_ip_filters(request.principal), "api.ip-filters.read")
    ip_filter = _visible_filter(request, filter_id)
    return _detail_page(request, ip_filter, AddressTestForm(), decision=None)


def _detail_page(
    request: OrganizationRequest,
    ip_filter: IpFilter,
    test_form: AddressTestForm,
    decision: ip_rules.Decision | None,
    status: int = 200,
) -> HttpResponse:
    use = services.filter_users(ip_filter, request.principal)
    lines = ip_filter.rules_text.splitlines()
    return render(
        request,
        "policies/ip_filter_detail.html",
        {
            "section": "ip-filters",
            "ip_filter": ip_filter,
            "lines": list(enumerate(lines, start=1)),
            "use": use,
            "test_form": test_form,
            "decision": decision,
            "can_write": rules.may_write_ip_filters(request.principal),
            "can_delete": rules.may_delete_ip_filters(request.principal),
        },
        status=status,
    )


@require_GET
@organization_view
def ip_filter_test(request: OrganizationRequest, filter_id: int) -> HttpResponse:
    """Test an address against the filter: allowed or denied, and the line that decided."""
    _require(request, rules.may_read_ip_filters(request.principal), "api.ip-filters.read")
    ip_filter = _visible_filter(request, filter_id)
    form = AddressTestForm(request.GET)
    decision = None
    if form.is_valid():
        try:
            decision = services.check_address(
                ip_filter=ip_filter, address=form.cleaned_data["address"]
            )
        except ValidationError as error:
            for message in error.message_dict.get("address", []):
                form.add_error("address", message)
    context = {"ip_filter": ip_filter, "test_form": form, "decision": decision}
    if request.htmx:
        return render(request, "policies/ip_filter_detail.html#test-result", context)
    return _detail_page(request, ip_filter, form, decision)


@require_http_methods(["GET", "POST"])
@organization_view
def ip_filter_edit(request: OrganizationRequest, filter_id: int) -> HttpResponse:
    _require(request, rules.may_write_ip_filters(request.principal), "api.ip-filters.write")
    ip_filter = _visible_filter(request, filter_id)
    initial = {
        "name": ip_filter.name,
        "description": ip_filter.description,
        "rules_text": ip_filter.rules_text,
        "expected_version": ip_filter.version,
    }
    form = IpFilterForm(request.POST or None, initial=initial)
    # An edit says which version it was made on, or it could overwrite an edit it never saw.
    form.fields["expected_version"].required = True
    form.fields["expected_version"].error_messages["required"] = (
        "The page did not say which version you edited; reload it and make your change again."
    )
    if request.method == "POST" and form.is_valid():
        try:
            ip_filter = services.update_ip_filter(
                actor=request.principal,
                ip_filter=ip_filter,
                expected_version=form.cleaned_data["expected_version"],
                name=form.cleaned_data["name"],
                description=form.cleaned_data["description"],
                rules_text=form.cleaned_data["rules_text"],
            )
        except ValidationError as error:
            form.add_service_errors(error)
        except VersionConflict as error:
            form.add_error(None, error.message)
        except NotFound:
            return redirect("policies:ip-filter-list", request.organization.slug)
        else:
            messages.success(request, f"IP filter {ip_filter.name} saved.")
            return redirect("policies:ip-filter-detail", request.organization.slug, ip_filter.pk)
    withhold_pasted_tokens(request.principal, form, FILTER_TEXT_FIELDS)
    return render(
        request,
        "policies/ip_filter_form.html",
        {"section": "ip-filters", "form": form, "ip_filter": ip_filter},
    )


@require_http_methods(["GET", "POST"])
@organization_view
def ip_filter_delete(request: OrganizationRequest, filter_id: int) -> HttpResponse:
    _require(request, rules.may_delete_ip_filters(request.principal), "api.ip-filters.delete")
    ip_filter = _visible_filter(request, filter_id)
    use = services.filter_users(ip_filter, request.principal)
    refusal = ""
    if request.method == "POST":
        try:
            services.delete_ip_filter(actor=request.principal, ip_filter=ip_filter)
        except services.IpFilterInUse as error:
            use, refusal = error.use, error.summary
        except NotFound:
            pass  # deleted meanwhile: the list no longer shows it either way
        if not refusal:
            messages.success(request, f"IP filter {ip_filter.name} deleted.")
            return redirect("policies:ip-filter-list", request.organization.slug)
    return render(
        request,
        "policies/ip_filter_delete.html",
        {
            "section": "ip-filters",
            "ip_filter": ip_filter,
            "use": use,
            "refusal": refusal,
        },
    )


# Security policy ----------------------------------------------------------------------------


def _policy_forms(
    request: OrganizationRequest, policy: SecurityPolicy, data: Any = None
) -> list[ScopePolicyForm]:
    filters = IpFilter.objects.visible_to(request.principal).order_by("name")
    return [
        ScopePolicyForm(
            data,
            scope=scope,
            filters=filters,
            initial=ScopePolicyForm.initial_for(policy.for_scope(scope)),
        )
        for scope in SCOPES
    ]


def _changes(forms: list[ScopePolicyForm]) -> dict[str, dict[str, Any]]:
    return {form.scope: form.changes() for form in forms}


def _attach_errors(forms: list[ScopePolicyForm], error: ValidationError) -> list[str]:
    """Put ``scope.setting`` errors beside their fields; return the rest."""
    by_scope = {form.scope: form for form in forms}
    general = []
    for key, messages_ in error.message_dict.items():
        scope, _, setting = key.partition(".")
        form = by_scope.get(scope)
        if form is not None and setting in form.fields:
            for message in messages_:
                form.add_error(setting, message)
        else:
            general.extend(messages_)
    return general


def _policy_page(
    request: OrganizationRequest,
    policy: SecurityPolicy,
    forms: list[ScopePolicyForm],
    *,
    impact: services.PolicyImpact | None = None,
    errors: list[str] | None = None,
    template: str = "policies/policy.html",
) -> HttpResponse:
    return render(
        request,
        template,
        {
            "section": "policy",
            "policy": policy,
            "forms": forms,
            "impact": impact,
            "errors": errors or [],
            # Errors beside fields are listed above the preview too, each naming its field
            # (keyward.js marks the field), since a preview swaps in only this part.
            "field_errors": [
                {
                    "field": form[name].auto_id,
                    "text": f"{form.scope.capitalize()} tokens, {str(form[name].label).lower()}: "
                    + " ".join(map(str, messages_)),
                }
                for form in forms
                if form.is_bound
                for name, messages_ in form.errors.items()
                if name in form.fields
            ],
            "has_filters": IpFilter.objects.visible_to(request.principal).exists(),
        },
    )


def _preview(
    request: OrganizationRequest, policy: SecurityPolicy, forms: list[ScopePolicyForm]
) -> tuple[services.PolicyImpact | None, list[str]]:
    if not all(form.is_valid() for form in forms):
        return None, []
    try:
        impact = services.preview_policy_change(
            actor=request.principal,
            organization=request.organization,
            changes=_changes(forms),
        )
    except ValidationError as error:
        return None, _attach_errors(forms, error)
    return impact, []


@require_http_methods(["GET", "POST"])
@organization_view
def policy(request: OrganizationRequest) -> HttpResponse:
    """The security policy per kind of token; POST applies a previewed change."""
    _require(request, rules.may_read_policy(request.principal), "api.security-policies.read")
    if request.method == "POST":
        _require(
            request,
            rules.may_change_policy(request.principal),
            "api.security-policies.write",
        )
    current = _policy(request)
    if request.method == "GET":
        return _policy_page(request, current, _policy_forms(request, current))
    forms = _policy_forms(request, current, request.POST)
    errors: list[str] = []
    try:
        version: int | None = int(request.POST.get("expected_version", ""))
    except ValueError:
        # Without the version it was read at, a save could silently undo a change made
        # meanwhile: nothing is saved, and the page (at the current version) says why.
        version = None
        errors.append(
            "The page did not say which version of the policy it shows; nothing was saved. "
            "Review the settings below and save again."
        )
    if version is not None and all(form.is_valid() for form in forms):
        try:
            applied = services.update_security_policy(
                actor=request.principal,
                organization=request.organization,
                changes=_changes(forms),
                expected_version=version,
                expected_impact=request.POST.get("expected_impact") or None,
            )
        except ValidationError as error:
            errors = _attach_errors(forms, error)
        except VersionConflict as error:
            errors = [error.message]
        else:
            if applied.setting_changes or applied.touched_count:
                summary = applied.summary(applied=True)
                details = "".join(f" {line[:1].upper()}{line[1:]}." for line in summary)
                messages.success(request, f"Security policy saved.{details}")
                if applied.progress is not None and applied.progress.unfinished:
                    messages.warning(
                        request,
                        "Some tokens are not rewritten yet: the background worker finishes "
                        "them. The new policy already applies to them.",
                    )
            else:
                messages.info(request, "Nothing changed.")
            return redirect("policies:policy", request.organization.slug)
    impact, preview_errors = _preview(request, _policy(request), forms)
    return _policy_page(request, current, forms, impact=impact, errors=errors + preview_errors)


@require_POST
@organization_view
def policy_preview(request: OrganizationRequest) -> HttpResponse:
    """What the submitted settings would change, before anything is saved."""
    _require(request, rules.may_change_policy(request.principal), "api.security-policies.write")
    current = _policy(request)
    forms = _policy_forms(request, current, request.POST)
    impact, errors = _preview(request, current, forms)
    template = "policies/policy.html#impact" if request.htmx else "policies/policy.html"
    return _policy_page(request, current, forms, impact=impact, errors=errors, template=template)
