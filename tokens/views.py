"""Console pages for API tokens: the lists of each scope, create, detail and the actions.

Views read a form, call a service from ``tokens.services`` and render a page, or for an HTMX
request the named partial of that same page. Every token is looked up through
``ApiToken.objects.visible_to``, so a token outside the person's reach is a 404.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Any

from django.contrib import messages
from django.core.exceptions import PermissionDenied, ValidationError
from django.db.models import Count, OuterRef, Subquery
from django.db.models.functions import Coalesce
from django.http import Http404, HttpResponse, HttpResponseBase
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.utils import timezone
from django.utils.cache import add_never_cache_headers, patch_vary_headers
from django.views.decorators.debug import sensitive_variables
from django.views.decorators.http import require_GET, require_http_methods
from django_htmx.http import HttpResponseClientRedirect, trigger_client_event

from access import catalog, rules
from access.errors import Forbidden, NotFound, PolicyViolation, TokenLeaked, VersionConflict
from api.support import MAX_ID
from orgs import disclosed
from orgs.console import OrganizationRequest, organization_view
from orgs.console import is_partial as _is_partial
from orgs.models import AuditEvent, Group, GroupMembership, Organization
from orgs.principals import Principal
from policies.models import IpFilter, ScopePolicy, SecurityPolicy
from tokens import services, usage
from tokens.console import withhold_pasted_tokens
from tokens.forms import (
    AddressesForm,
    ConfirmForm,
    CreateTokenForm,
    EditPermissionsForm,
    RegenerateForm,
    RenameForm,
    RevokeForm,
    TokenFilterForm,
    service_errors_to_form,
    submitted_permissions,
)
from tokens.models import (
    ApiToken,
    ApiTokenQuerySet,
    TokenRole,
    TokenScope,
    TokenSecret,
    TokenStatus,
)

PAGE_SIZE = 50
# Counting stops here: an exact total over 100,000 rows would cost more than the page itself.
COUNT_CAP = 10_000


# Pages go no further than the capped count reaches.
LAST_PAGE = COUNT_CAP // PAGE_SIZE + 1


def _page_number(value: str | None) -> int:
    try:
        return min(max(1, int(value or 1)), LAST_PAGE)
    except (TypeError, ValueError, OverflowError):
        return 1


class TokenPage:
    """One page of a token list, read before its total and without it.

    The page reads one row more than it shows, to know whether another page follows. The
    total of matches is then known for free when the page is the last one; otherwise it is
    counted up to COUNT_CAP, at once for a plain list (a walk of the organization's index),
    and in a second request for a text filter (``?count=1``), whose count must read every
    token name of the list while the page stops after fifty matches.
    """

    def __init__(self, queryset: ApiTokenQuerySet, number: str | None, *, defer_count: bool):
        self._queryset = queryset
        self.number = _page_number(number)
        bottom = (self.number - 1) * PAGE_SIZE
        rows = list(queryset[bottom : bottom + PAGE_SIZE + 1])
        if not rows and self.number > 1:
            # Past the end (a link from before tokens were deleted): the last page instead.
            self.number = max(1, -(-min(self.capped_count(), COUNT_CAP) // PAGE_SIZE))
            bottom = (self.number - 1) * PAGE_SIZE
            rows = list(queryset[bottom : bottom + PAGE_SIZE + 1])
        self.has_next = len(rows) > PAGE_SIZE
        self.object_list = rows[:PAGE_SIZE]
        self.start_index = bottom + 1 if self.object_list else 0
        self.end_index = bottom + len(self.object_list)
        self.count: int | None
        if not self.has_next:
            self.count = self.end_index
        elif defer_count:
            self.count = None
        else:
            self.count = self.capped_count()

    def capped_count(self) -> int:
        return self.capped_count_of(self._queryset)

    @staticmethod
    def capped_count_of(queryset: ApiTokenQuerySet) -> int:
        """Matches counted up to one more than COUNT_CAP."""
        return queryset.order_by()[: COUNT_CAP + 1].count()

    def __iter__(self) -> Iterator[ApiToken]:
        return iter(self.object_list)

    @property
    def is_capped(self) -> bool:
        return self.count is not None and self.count > COUNT_CAP

    @property
    def has_previous(self) -> bool:
        return self.number > 1

    @property
    def previous_page_number(self) -> int:
        return self.number - 1

    @property
    def next_page_number(self) -> int:
        return self.number + 1

    @property
    def num_pages(self) -> int | None:
        if self.count is None or self.is_capped:
            return None
        return max(1, -(-self.count // PAGE_SIZE))


# The actions a list's Status column offers (when the status and the viewer allow them), in
# the order shown; each opens the same dialog as on the detail page.
ROW_ACTIONS = [
    ("revoke", "Revoke"),
    ("restore", "Restore"),
    ("regenerate", "Regenerate"),
    ("delete", "Delete"),
]
USAGE_DAYS = 30
RECENT_EVENTS = 10
TOKEN_CHANGED = "token-changed"
CLOSE_DIALOG = "close-dialog"


def _vary_on_htmx(response: HttpResponse) -> HttpResponse:
    """A URL that answers a page or its fragment must not have one cached for the other."""
    patch_vary_headers(response, ["HX-Request"])
    return response


# The free-text fields of the token forms, where someone may paste a secret.
FREE_TEXT_FIELDS = ("name", "description", "reason")


def _scope_policy(organization: Organization, scope: str) -> ScopePolicy:
    return SecurityPolicy.objects.for_organization(organization).for_scope(scope)


# Scopes ---------------------------------------------------------------------------------------


@dataclass(frozen=True)
class TokenScopePage:
    """One list of tokens: the organization's, a group's, or the person's own."""

    scope: str
    organization: Organization
    group: Group | None
    list_url: str
    create_url: str
    title: str
    inactive_url: str = ""

    def tokens(self, principal: Principal) -> ApiTokenQuerySet:
        visible = ApiToken.objects.visible_to(principal).filter(scope=self.scope)
        if self.scope == TokenScope.GROUP:
            return visible.filter(group=self.group)
        if self.scope == TokenScope.PERSONAL:
            return visible.filter(user=principal.user)
        return visible


def _organization_page(request: OrganizationRequest) -> TokenScopePage:
    if not rules.may_list_tokens(request.principal, TokenScope.ORGANIZATION):
        raise PermissionDenied("Organization tokens are managed by the organization's admins.")
    return _organization_links(request)


def _organization_links(request: OrganizationRequest) -> TokenScopePage:
    slug = request.organization.slug
    return TokenScopePage(
        scope=TokenScope.ORGANIZATION,
        organization=request.organization,
        group=None,
        list_url=reverse("tokens:list", kwargs={"org_slug": slug}),
        create_url=reverse("tokens:create", kwargs={"org_slug": slug}),
        title="Organization tokens",
        inactive_url=reverse("tokens:inactive", kwargs={"org_slug": slug}),
    )


def _personal_page(request: OrganizationRequest) -> TokenScopePage:
    slug = request.organization.slug
    return TokenScopePage(
        scope=TokenScope.PERSONAL,
        organization=request.organization,
        group=None,
        list_url=reverse("tokens:personal-list", kwargs={"org_slug": slug}),
        create_url=reverse("tokens:personal-create", kwargs={"org_slug": slug}),
        title="My API tokens",
        inactive_url=reverse("tokens:personal-inactive", kwargs={"org_slug": slug}),
    )


def _administered_group(request: OrganizationRequest, group_slug: str) -> Group:
    """The group, if the person administers it (or its organization); 404 if they are not in
    it, 403 if they are in it without being one of its admins."""
    group = get_object_or_404(Group.objects.visible_to(request.principal), slug=group_slug)
    if not rules.may_list_tokens(request.principal, TokenScope.GROUP, group.pk):
        raise PermissionDenied(f"Only the admins of {group.name} manage its tokens.")
    return group


def _group_page(request: OrganizationRequest, group: Group) -> TokenScopePage:
    kwargs = {"org_slug": request.organization.slug, "group_slug": group.slug}
    return TokenScopePage(
        scope=TokenScope.GROUP,
        organization=request.organization,
        group=group,
        list_url=reverse("tokens:group-detail", kwargs=kwargs),
        create_url=reverse("tokens:group-create", kwargs=kwargs),
        title=group.name,
        inactive_url=reverse("tokens:group-inactive", kwargs=kwargs),
    )


def _page_of_token(request: OrganizationRequest, token: ApiToken) -> TokenScopePage:
    """The list a token belongs to, for breadcrumbs and where to go after deleting it."""
    if token.scope == TokenScope.GROUP and token.group is not None:
        return _group_page(request, token.group)
    if rules.acts_as_owner(request.principal, token):
        return _personal_page(request)
    # Links only: the token itself was already found through the viewer's visibility.
    return _organization_links(request)


# Landing --------------------------------------------------------------------------------------


@organization_view
@require_GET
def organization_home(request: OrganizationRequest) -> HttpResponse:
    """Send admins to the organization's tokens and everyone else to their own."""
    organization_tokens = rules.may_list_tokens(request.principal, TokenScope.ORGANIZATION)
    target = "tokens:list" if organization_tokens else "tokens:personal-list"
    return redirect(target, org_slug=request.organization.slug)


# Lists ----------------------------------------------------------------------------------------


def _render_list(
    request: OrganizationRequest,
    page: TokenScopePage,
    extra: dict[str, Any] | None = None,
    *,
    inactive: bool = False,
) -> HttpResponse:
    """The list of a scope's tokens: the usual one, or the Inactive one (revoked, leaked and
    expired tokens until cleanup removes them)."""
    now = timezone.now()
    principal = request.principal
    current_url = page.inactive_url if inactive else page.list_url
    # In the filter box or any other parameter (a second q, sort, status): every one of them
    # goes back into the page's links and the redirect.
    refused = disclosed.refuse_secrets_in_query(
        request, principal, current_url, drop=("q", "count")
    )
    if refused is not None:
        return refused
    all_tokens = page.tokens(principal)
    filter_form = TokenFilterForm(request.GET, inactive=inactive)
    tokens = filter_form.filter(all_tokens, now).select_related("ip_filter")
    query = request.GET.copy()
    query.pop("page", None)
    query.pop("count", None)
    policy = _scope_policy(request.organization, page.scope)
    context = {
        "scope_page": page,
        "inactive": inactive,
        "current_url": current_url,
        "row_actions": ROW_ACTIONS,
        "filter_form": filter_form,
        "query": query.urlencode(),
        "sort_columns": filter_form.sort_columns(request.GET),
        "policy": policy,
        "count_cap": f"{COUNT_CAP:,}",
        **(extra or {}),
    }
    template = "tokens/token_list.html"
    if request.GET.get("count") and _is_partial(request):
        # The second request of a filtered list: the total of matches alone.
        count = TokenPage.capped_count_of(tokens)
        number = _page_number(request.GET.get("page"))
        context.update(
            count=count,
            count_is_capped=count > COUNT_CAP,
            start_index=min((number - 1) * PAGE_SIZE + 1, count),
            end_index=min(number * PAGE_SIZE, count),
        )
        return _vary_on_htmx(render(request, template + "#token-count", context))
    page_obj = TokenPage(
        tokens,
        request.GET.get("page"),
        # Without JavaScript, the "Count the matching tokens" link asks for the whole page
        # with its total.
        defer_count=bool(getattr(filter_form, "cleaned_data", {}).get("q"))
        and not request.GET.get("count"),
    )
    shown = all_tokens.inactive(now) if inactive else all_tokens.current(now)
    has_tokens = bool(page_obj.object_list) or shown.exists()
    context.update(
        page_obj=page_obj,
        rows=[
            {"token": token, "actions": allowed_actions(principal, token, policy, now=now)}
            for token in page_obj
        ],
        has_tokens=has_tokens,
        # An empty main list says where the revoked and expired ones went.
        has_inactive=not inactive and not has_tokens and all_tokens.inactive(now).exists(),
        count_url=f"?{query.urlencode()}&page={page_obj.number}&count=1".replace("?&", "?"),
    )
    if _is_partial(request):
        template += "#token-results"
    return _vary_on_htmx(render(request, template, context))


@organization_view
@require_GET
def token_list(request: OrganizationRequest) -> HttpResponse:
    return _render_list(request, _organization_page(request))


@organization_view
@require_GET
def personal_list(request: OrganizationRequest) -> HttpResponse:
    return _render_list(request, _personal_page(request))


@organization_view
@require_GET
def token_inactive(request: OrganizationRequest) -> HttpResponse:
    return _render_list(request, _organization_page(request), inactive=True)


@organization_view
@require_GET
def personal_inactive(request: OrganizationRequest) -> HttpResponse:
    return _render_list(request, _personal_page(request), inactive=True)


@organization_view
@require_GET
def group_list(request: OrganizationRequest) -> HttpResponse:
    principal = request.principal
    # Counted by subqueries: a join through the viewer's own membership would count only them.
    members = (
        GroupMembership.objects.filter(group=OuterRef("pk"))
        .order_by()
        .values("group")
        .annotate(total=Count("pk"))
        .values("total")
    )
    tokens = (
        ApiToken.objects.filter(group=OuterRef("pk"))
        .order_by()
        .values("group")
        .annotate(total=Count("pk"))
        .values("total")
    )
    groups = [
        {"group": group, "administered": rules.may_administer_group(principal, group.pk)}
        for group in Group.objects.visible_to(principal)
        .annotate(
            member_count=Coalesce(Subquery(members), 0),
            token_count=Coalesce(Subquery(tokens), 0),
        )
        .order_by("name")
    ]
    return render(request, "tokens/group_list.html", {"groups": groups, "section": "group"})


@organization_view
@require_GET
def group_detail(request: OrganizationRequest, group_slug: str) -> HttpResponse:
    group = _administered_group(request, group_slug)
    members = group.memberships.select_related("user").order_by("role", "user__username")
    return _render_list(request, _group_page(request, group), {"group": group, "members": members})


@organization_view
@require_GET
def group_inactive(request: OrganizationRequest, group_slug: str) -> HttpResponse:
    group = _administered_group(request, group_slug)
    return _render_list(request, _group_page(request, group), {"group": group}, inactive=True)


# Create ---------------------------------------------------------------------------------------


@sensitive_variables("issued")
def _create(request: OrganizationRequest, page: TokenScopePage) -> HttpResponse:
    """The create dialog of one list; on success, the reveal of the new token."""
    now = timezone.now()
    principal = request.principal
    policy = _scope_policy(request.organization, page.scope)
    replacing = _replacing(request, page) if request.method == "GET" else None
    form = CreateTokenForm(
        request.POST if request.method == "POST" else None,
        scope=page.scope,
        policy=policy,
        held=rules.effective_permissions(principal),
        ip_filters=IpFilter.objects.visible_to(principal),
        now=now,
        initial=services.replacement_draft(actor=principal, token=replacing) if replacing else None,
    )
    context: dict[str, Any] = {
        "scope_page": page,
        "form": form,
        "policy": policy,
        "replacing": replacing,
    }
    if not policy.allowed:
        context["form"] = None
    elif request.method == "POST" and form.is_valid():
        data = form.cleaned_data
        try:
            issued = services.create_token(
                actor=principal,
                organization=request.organization,
                name=data["name"],
                description=data["description"],
                scope=page.scope,
                group=page.group,
                role=data["role"],
                permissions=data["permissions"],
                expires_at=data["expires_at"],
                allowed_addresses=data["allowed_addresses"],
                ip_filter=data["ip_filter"],
                now=now,
            )
        except ValidationError as error:
            service_errors_to_form(form, error)
        except PolicyViolation as error:
            form.add_error(None, error.message)
        except (Forbidden, NotFound) as error:
            raise PermissionDenied(error.message) from None
        else:
            return _reveal(
                request, "tokens/token_create.html", "create-content", {**context, "issued": issued}
            )
    if request.method == "POST":
        withhold_pasted_tokens(principal, context["form"], FREE_TEXT_FIELDS)
    template = "tokens/token_create.html"
    if _is_partial(request):
        template += "#create-content" if request.method == "POST" else "#create-dialog"
    return render(request, template, context)


def _replacing(request: OrganizationRequest, page: TokenScopePage) -> ApiToken | None:
    """The leaked token named by ``?replace=``, if it belongs to this list and the person may
    replace it (404 otherwise, 403 when they see it but may not)."""
    raw = request.GET.get("replace")
    if not raw:
        return None
    # isdecimal, not isdigit: "²" is a digit int() refuses; and no id beyond a bigint.
    if not raw.isdecimal() or not 0 < int(raw) <= MAX_ID:
        raise Http404("No such API token.")
    token = _visible_token(request, int(raw))
    if token.scope != page.scope or token.group_id != (page.group.pk if page.group else None):
        raise Http404("No such API token in this list.")
    refusal = rules.replacement_refusal(request.principal, token)
    if refusal is not None:
        raise PermissionDenied(refusal)
    return token


@sensitive_variables()  # every frame below, template rendering included, masked in reports
def _reveal(
    request: OrganizationRequest, template: str, partial: str, context: dict[str, Any]
) -> HttpResponse:
    """The one response that carries a secret: never cached, and the lists refresh behind it."""
    if _is_partial(request):
        template += f"#{partial}"
    response = render(request, template, context)
    add_never_cache_headers(response)
    trigger_client_event(response, TOKEN_CHANGED)
    return response


@organization_view
@require_http_methods(["GET", "POST"])
def token_create(request: OrganizationRequest) -> HttpResponse:
    return _create(request, _organization_page(request))


@organization_view
@require_http_methods(["GET", "POST"])
def personal_create(request: OrganizationRequest) -> HttpResponse:
    return _create(request, _personal_page(request))


@organization_view
@require_http_methods(["GET", "POST"])
def group_create(request: OrganizationRequest, group_slug: str) -> HttpResponse:
    group = _administered_group(request, group_slug)
    return _create(request, _group_page(request, group))


# Detail ---------------------------------------------------------------------------------------


def _visible_token(request: OrganizationRequest, token_id: int) -> ApiToken:
    return get_object_or_404(
        ApiToken.objects.visible_to(request.principal).select_related(
            "organization", "group", "user", "ip_filter"
        ),
        pk=token_id,
    )


def allowed_actions(
    principal: Principal, token: ApiToken, policy: ScopePolicy, *, now: datetime | None = None
) -> set[str]:
    """The actions to offer on a token: what the access layer lets the person do, within what
    the policy and the token's state allow. The services check all of it again when they run."""
    status = token.display_status(now)
    actions: set[str] = set()
    if rules.may_manage_token(principal, token, "rename"):
        actions.add("rename")
    if policy.permission_edits_allowed and rules.may_manage_token(
        principal, token, "change_permissions"
    ):
        actions.add("edit")
    if policy.custom_ip_allowed and rules.may_manage_token(principal, token, "change_addresses"):
        actions.add("addresses")
    if (
        policy.regeneration_allowed
        and status == "active"
        and rules.may_manage_token(principal, token, "regenerate")
    ):
        actions.add("regenerate")
    if token.status == TokenStatus.ACTIVE:
        if rules.may_revoke_token(principal, token):
            actions.add("revoke")
    elif rules.may_restore_token(principal, token):
        actions.add("restore")
    if rules.may_replace_token(principal, token):
        actions.add("replace")
    if rules.may_manage_token(principal, token, "delete"):
        actions.add("delete")
    return actions


def usage_chart(token: ApiToken, today: date) -> dict[str, Any]:
    """Daily request counts of the last 30 days as bars of a small SVG chart."""
    first = today - timedelta(days=USAGE_DAYS - 1)
    counts = usage.counts_between(token, first, today)
    days = [first + timedelta(days=offset) for offset in range(USAGE_DAYS)]
    peak = max(counts.values(), default=0)
    bar_width, gap, height = 10, 2, 60
    bars = []
    for index, day in enumerate(days):
        count = counts.get(day, 0)
        bar_height = round(count / peak * height) if peak else 0
        if count and bar_height < 2:
            bar_height = 2
        bars.append(
            {
                "day": day,
                "count": count,
                "x": index * (bar_width + gap),
                "y": height - bar_height,
                "width": bar_width,
                "height": bar_height,
            }
        )
    return {
        "bars": bars,
        "total": sum(counts.values()),
        "peak": peak,
        "first": first,
        "last": today,
        "width": USAGE_DAYS * (bar_width + gap) - gap,
        "height": height,
    }


def _permission_table(token: ApiToken) -> list[dict[str, Any]]:
    granted = token.granted_permissions()
    return [
        {
            "resource": resource,
            "permissions": [
                {"permission": permission, "granted": permission.name in granted}
                for permission in permissions
            ],
        }
        for resource, permissions in catalog.grouped(token.scope)
    ]


def _detail_context(request: OrganizationRequest, token: ApiToken) -> dict[str, Any]:
    now = timezone.now()
    policy = _scope_policy(request.organization, token.scope)
    ineffective: list[str] = []
    if token.scope == TokenScope.PERSONAL:
        owner = Principal.for_member(token.user, request.organization)
        ineffective = rules.ineffective_permissions(owner, token)
    grace_secrets = sorted(
        (use for use in usage.secret_last_uses(token) if use.ends_at and use.ends_at > now),
        key=lambda use: use.ends_at or now,
    )
    leaked_old_secrets = TokenSecret.objects.filter(
        token=token, ends_at__isnull=False, leaked_at__isnull=False
    ).order_by("-leaked_at")
    granted = token.granted_permissions()
    return {
        "token": token,
        "scope_page": _page_of_token(request, token),
        "policy": policy,
        "status": token.display_status(now),
        "permission_table": _permission_table(token),
        "granted_count": len(granted),
        "ineffective": ineffective,
        "grace_secrets": grace_secrets,
        "leaked_old_secrets": leaked_old_secrets,
        "chart": usage_chart(token, now.date()),
        "events": AuditEvent.objects.for_token(token.pk).seen_beside_token_by(request.principal)[
            :RECENT_EVENTS
        ],
        "actions": allowed_actions(request.principal, token, policy),
        "ip_filter_enforced": policy.enforced_ip_filter_id is not None
        and policy.enforced_ip_filter_id == token.ip_filter_id,
    }


@organization_view
@require_GET
def token_detail(request: OrganizationRequest, token_id: int) -> HttpResponse:
    token = _visible_token(request, token_id)
    template = "tokens/token_detail.html"
    if _is_partial(request):
        template += "#token-detail"
    context = _detail_context(request, token)
    return _vary_on_htmx(render(request, template, context))


# Actions --------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Action:
    name: str
    title: str
    form_class: type


ACTIONS = {
    "rename": Action("rename", "Edit name and description", RenameForm),
    "edit": Action("edit", "Edit permissions", EditPermissionsForm),
    "addresses": Action("addresses", "Change IP filter and addresses", AddressesForm),
    "regenerate": Action("regenerate", "Regenerate token", RegenerateForm),
    "revoke": Action("revoke", "Revoke token", RevokeForm),
    "restore": Action("restore", "Restore token", ConfirmForm),
    "delete": Action("delete", "Delete token", ConfirmForm),
}


# The console's actions that manage a token, by the access layer's name for them.
MANAGE_ACTION_OF = {
    "rename": "rename",
    "edit": "change_permissions",
    "addresses": "change_addresses",
    "regenerate": "regenerate",
    "restore": "restore",
    "delete": "delete",
}


def _requested_version(request: OrganizationRequest, token: ApiToken) -> int:
    """The version of the page the person opened the action from (``?version=``)."""
    try:
        version = int(request.GET.get("version", token.version))
    except ValueError:
        return token.version
    return version if version > 0 else token.version


def _action_form(
    action: Action, request: OrganizationRequest, token: ApiToken, policy: ScopePolicy
) -> Any:
    data = request.POST if request.method == "POST" else None
    kwargs: dict[str, Any] = {"initial": {"version": _requested_version(request, token)}}
    if action.name == "edit":
        kwargs["initial"].update(
            {"role": token.role, "permissions": sorted(token.granted_permissions())}
        )
        return EditPermissionsForm(
            data, scope=token.scope, held=rules.effective_permissions(request.principal), **kwargs
        )
    if action.name == "rename":
        kwargs["initial"].update({"name": token.name, "description": token.description})
        return RenameForm(data, **kwargs)
    if action.name == "regenerate":
        return RegenerateForm(data, max_grace=policy.max_grace, **kwargs)
    if action.name == "addresses":
        kwargs["initial"].update(
            {
                "ip_filter": token.ip_filter_id,
                "allowed_addresses": "\n".join(token.allowed_addresses),
            }
        )
        return AddressesForm(
            data, ip_filters=IpFilter.objects.visible_to(request.principal), **kwargs
        )
    return action.form_class(data, **kwargs)


@sensitive_variables("issued")
def _run_action(
    action: Action,
    request: OrganizationRequest,
    token: ApiToken,
    form: Any,
    context: dict[str, Any],
) -> HttpResponseBase | None:
    """Call the service; return the success response, or None with errors on the form."""
    principal = request.principal
    data = form.cleaned_data
    version = data["version"]
    list_url = _page_of_token(request, token).list_url
    try:
        if action.name == "rename":
            updated = services.update_token(
                actor=principal,
                token=token,
                expected_version=version,
                name=data["name"],
                description=data["description"],
            )
            message = f"{updated.name} is saved."
        elif action.name == "edit":
            services.update_token_permissions(
                actor=principal,
                token=token,
                role=data["role"],
                permissions=data["permissions"],
                expected_version=version,
            )
            message = f"Permissions of {token.name} saved."
        elif action.name == "addresses":
            services.update_token_addresses(
                actor=principal,
                token=token,
                ip_filter=data["ip_filter"],
                allowed_addresses=data["allowed_addresses"],
                expected_version=version,
            )
            message = f"IP filter and addresses of {token.name} saved."
        elif action.name == "regenerate":
            issued = services.regenerate_token(
                actor=principal, token=token, expected_version=version, grace=data["grace"]
            )
            context.update(
                token=issued.token,
                issued=issued,
                grace=data["grace"],
                grace_ends_at=issued.token.modified_at + data["grace"],
            )
            return _reveal(request, "tokens/token_action.html", "action-content", context)
        elif action.name == "revoke":
            services.revoke_token(
                actor=principal, token=token, expected_version=version, reason=data["reason"]
            )
            message = f"{token.name} is revoked: requests with it now fail."
        elif action.name == "restore":
            services.restore_token(actor=principal, token=token, expected_version=version)
            message = f"{token.name} is restored and works again."
        else:
            services.delete_token(actor=principal, token=token, expected_version=version)
            messages.success(request, f"{token.name} is deleted: requests with it now fail.")
            if _is_partial(request):
                return HttpResponseClientRedirect(list_url)
            return redirect(list_url)
    except VersionConflict:
        form.conflict = True
        return None
    except ValidationError as error:
        service_errors_to_form(form, error)
        return None
    except (PolicyViolation, TokenLeaked) as error:
        form.add_error(None, error.message)
        return None
    except NotFound:
        raise Http404("No such API token.") from None
    messages.success(request, message)
    if _is_partial(request):
        response = HttpResponse(status=204)
        trigger_client_event(response, TOKEN_CHANGED)
        trigger_client_event(response, CLOSE_DIALOG)
        return response
    return redirect("tokens:detail", org_slug=request.organization.slug, token_id=token.pk)


def _action_view(action_name: str) -> Any:
    action = ACTIONS[action_name]

    @organization_view
    @require_http_methods(["GET", "POST"])
    def view(request: OrganizationRequest, token_id: int) -> HttpResponseBase:
        token = _visible_token(request, token_id)
        policy = _scope_policy(request.organization, token.scope)
        form = _action_form(action, request, token, policy)
        form.conflict = False
        context = {
            "token": token,
            "action": action,
            "form": form,
            "policy": policy,
            "detail_url": reverse(
                "tokens:detail",
                kwargs={"org_slug": request.organization.slug, "token_id": token.pk},
            ),
        }
        if request.method == "POST" and form.is_valid():
            response = _run_action(action, request, token, form, context)
            if response is not None:
                return response
            token.refresh_from_db()
        if request.method == "POST":
            withhold_pasted_tokens(request.principal, form, FREE_TEXT_FIELDS)
        elif request.method == "GET" and form.initial["version"] != token.version:
            form.conflict = True
        context["available"] = action_name in allowed_actions(request.principal, token, policy)
        if action_name in MANAGE_ACTION_OF:
            context["refusal"] = rules.manage_refusal(
                request.principal, token, MANAGE_ACTION_OF[action_name]
            )
        if action_name == "edit":
            context["changes"] = (
                _preview_from(form, token)
                if form.is_bound
                else services.permission_changes(token, token.role, token.permissions)
            )
        template = "tokens/token_action.html"
        if _is_partial(request):
            template += "#action-content" if request.method == "POST" else "#action-dialog"
        return render(request, template, context)

    view.__name__ = f"token_{action_name}"
    view.__qualname__ = view.__name__
    return view


def _preview_from(form: Any, token: ApiToken) -> dict[str, list[str]]:
    role = form.data.get("role", token.role)
    if role not in TokenRole.values:
        return {"added": [], "removed": []}
    return services.permission_changes(token, role, submitted_permissions(form.data))


token_rename = _action_view("rename")
token_edit_permissions = _action_view("edit")
token_addresses = _action_view("addresses")
token_regenerate = _action_view("regenerate")
token_revoke = _action_view("revoke")
token_restore = _action_view("restore")
token_delete = _action_view("delete")


@organization_view
@require_GET
def permission_preview(request: OrganizationRequest, token_id: int) -> HttpResponse:
    """What saving the permission editor would add and remove, shown before saving."""
    token = _visible_token(request, token_id)
    role = request.GET.get("role", token.role)
    if role not in TokenRole.values:
        role = token.role
    changes = services.permission_changes(token, role, submitted_permissions(request.GET))
    return render(
        request,
        "tokens/token_action.html#permission-changes",
        {"token": token, "changes": changes},
    )
