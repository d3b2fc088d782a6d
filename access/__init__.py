"""The access layer: every answer to "may this principal do this to that", in one place.

``catalog`` is the permission catalog and what roles stand for; ``principal`` the Principal and
what it holds; ``rules`` the rule functions (``may_*`` for pages deciding what to offer,
``require_*`` for services); ``visibility`` one filter per model that every ``visible_to``
queryset applies. Services call the rules; views ask them what to show; nothing else restates
one. This package imports no model: ``orgs.principals`` loads principals from the database.

The rules (decided):

- A principal's effective permissions: an organization or group token's own grant; a personal
  token's grant capped by its owner's rights at the moment of the request; a person's by their
  role (organization admin: everything; member: the member role's reads and their own personal
  tokens; group admin: a group token's full set, inside their groups). Being an admin is a set
  of permissions, never a consequence of a token's scope.
- Reach: an operator, an organization token and an organization admin (in the console or
  through a personal token) reach the whole organization; a group token its group; a person the
  groups they administer, and their own personal tokens.
- Managing a token (regenerate, restore, rename, change its role or permissions, change its IP
  filter or allowed addresses, delete) needs the action's permission, the token within reach,
  and the target's effective permissions a subset of the actor's. A group actor acts only inside
  its group. A personal token is managed by its owner only.
- Revoking needs the write permission in scope only: anyone who may write may stop a token within
  reach, however strong (a kill switch; reversible by a strong enough actor; the reason and the
  revoker are recorded). An organization-wide principal may also revoke members' personal
  tokens; a personal token revoked by anyone but its owner is not the owner's to restore.
- Changing what restricts many tokens at once (a filter's rules, the addresses a policy gives or
  takes) is managing each of them.
- Nobody grants a permission they do not hold: a new token's effective permissions, a token's
  new role or permissions, and a person's new role must all be within the actor's own; nobody
  reshapes or removes a person who holds more than they do.
- Removing a person from an organization revokes their personal tokens there (reason "owner
  removed"); so does any change that shrinks a person's rights (demotion, leaving a group they
  administered, its deletion). Getting the rights back restores nothing.
- Role ``member`` reads tokens, their usage, groups, IP filters, the policy and the permission
  catalog of its scope and manages its owner's personal tokens; it does not read members, the
  organization's settings or the audit log.
- Visibility: an object outside the principal's visibility is a 404, never a 403.
"""
