"""Every change to an IP filter or a security policy: rights, version, audit, transactions.

Console views, the API, admin actions and commands call these and nothing else:
``filters`` (IP filters), ``impact`` (what a policy change would do: the preview),
``apply`` (doing it: the policy at once, the tokens batch by batch).
"""

from policies.services.apply import finish_unfinished, update_security_policy
from policies.services.filters import (
    DESCRIPTION_MAX_LENGTH,
    NAME_MAX_LENGTH,
    RULES_MAX_LENGTH,
    USERS_SHOWN,
    FilterUse,
    IpFilterInUse,
    check_address,
    create_ip_filter,
    delete_ip_filter,
    filter_users,
    update_ip_filter,
)
from policies.services.impact import (
    KINDS,
    SETTING_LABELS,
    SETTINGS,
    SHOWN,
    ChangeKind,
    ImpactChanged,
    KindImpact,
    PolicyImpact,
    SettingChange,
    TokenChange,
    describe_setting,
    preview_policy_change,
)

__all__ = [
    "DESCRIPTION_MAX_LENGTH",
    "KINDS",
    "NAME_MAX_LENGTH",
    "RULES_MAX_LENGTH",
    "SETTINGS",
    "SETTING_LABELS",
    "SHOWN",
    "USERS_SHOWN",
    "ChangeKind",
    "FilterUse",
    "ImpactChanged",
    "IpFilterInUse",
    "KindImpact",
    "PolicyImpact",
    "SettingChange",
    "TokenChange",
    "check_address",
    "create_ip_filter",
    "delete_ip_filter",
    "describe_setting",
    "filter_users",
    "finish_unfinished",
    "preview_policy_change",
    "update_ip_filter",
    "update_security_policy",
]
