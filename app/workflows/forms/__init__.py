"""The workflows feature's forms, by job.

- ``base``: ``NodeForm``, what every node form shares (fill from a node, read back,
  put schema problems at their fields), and the names the editor generates.
- ``actions``: the webhook, Jira and Linear node forms; ``nodes``: the condition,
  delay and trigger forms, and which form edits a node (``form_class_for``).
- ``panels``: the editor's forms around the graph (add node, add edge, settings, save).
- ``pages``: the workflow pages' forms (list filter, new, import, copy, secret, templates).

The editor's names are importable from here, as when this was one module.
"""

from app.workflows.forms.actions import JiraForm, LinearForm, WebhookForm
from app.workflows.forms.base import (
    PREFIX,
    Credential,
    NodeForm,
    Target,
    auto_name,
    secret_reference,
)
from app.workflows.forms.nodes import (
    NODE_FORMS,
    ConditionForm,
    DelayForm,
    TriggerForm,
    form_class_for,
    node_kind,
)
from app.workflows.forms.panels import (
    TIMEOUT_CHOICES,
    AddEdgeForm,
    AddNodeForm,
    SaveForm,
    SettingsForm,
)

__all__ = [
    "NODE_FORMS",
    "PREFIX",
    "TIMEOUT_CHOICES",
    "AddEdgeForm",
    "AddNodeForm",
    "ConditionForm",
    "Credential",
    "DelayForm",
    "JiraForm",
    "LinearForm",
    "NodeForm",
    "SaveForm",
    "SettingsForm",
    "Target",
    "TriggerForm",
    "WebhookForm",
    "auto_name",
    "form_class_for",
    "node_kind",
    "secret_reference",
]
