"""The template gallery: browse templates, make a workflow from one, and (admins) save a
workflow as a template, edit one or retire it.

Routes on the ``workflows`` blueprint (``blueprint.py``), under ``/workflows/templates``
and ``/workflows/<id>/save-as-template``; form posts take the shape of ``pages.submit``.
"""

from __future__ import annotations

from dataclasses import dataclass

from flask import render_template, url_for
from flask_login import current_user
from htmx_flask import request
from markupsafe import Markup
from pydantic import ValidationError
from werkzeug.wrappers import Response

from app.definition import parse_definition, referenced_secrets
from app.errors import ServiceError
from app.workflows import pages, service
from app.workflows import secrets as secret_store
from app.workflows.blueprint import bp
from app.workflows.enums import TemplateCategory
from app.workflows.forms.pages import CopyForm, SaveAsTemplateForm, TemplateForm
from app.workflows.graph.svg import render_svg
from app.workflows.models import Workflow
from app.workflows.pages import Page

__all__ = ["Card"]

ADMINS_ONLY = "Only admins can manage templates."


@dataclass(frozen=True)
class Card:
    template: Workflow
    picture: Markup
    secrets: list[str]


@bp.get("/templates")
def gallery() -> str:
    """The templates, by category; a GET form filters them by words and by category."""
    search = request.args.get("q", "")[:200]
    chosen = request.args.get("category", "")
    category = next((c for c in TemplateCategory if c.value == chosen), None)
    grouped = service.templates_by_category(search, category)
    cards: dict[TemplateCategory, list[Card]] = {}
    for category, templates in grouped.items():
        cards[category] = []
        for template in templates:
            try:
                needed = list(referenced_secrets(parse_definition(template.definition)))
            except ValidationError:
                needed = []
            picture = render_svg(
                template.definition,
                compact=True,
                natural_size=True,
                title=f"Graph of {template.name}",
            )
            cards[category].append(Card(template, picture, needed))
    return render_template(
        "workflows/gallery.html",
        cards=cards,
        search=search,
        category=category,
        categories=list(TemplateCategory),
        found=sum(len(items) for items in cards.values()),
    )


@bp.route("/templates/<workflow_id>/use", methods=["GET", "POST"])
def use_template(workflow_id: str) -> Page:
    """Make a disabled workflow from a template, then open it in the editor."""
    template = pages.load_template(workflow_id)
    form = CopyForm()
    if not form.is_submitted():
        form.name.data = template.name
    pages.set_owner_choices(form)
    source = service.secret_source(current_user, template)

    def change() -> pages.Done:
        scope, team_id = pages.owner(form.owner.data)
        workflow = service.use_template(
            current_user,
            template,
            scope=scope,
            team_id=team_id,
            name=(form.name.data or "").strip() or None,
            copy_secrets=bool(form.copy_secrets.data),
        )
        pages.set_category(workflow, template.template_category)
        created = (
            f"{workflow.name} created from the template, disabled. "
            f"{pages.secrets_message(workflow)}"
        )
        return pages.Done(pages.editor_url(workflow), (created, pages.fill_in_message(workflow)))

    shown = pages.submit(form, change)
    if isinstance(shown, Response):
        return shown
    picture = render_svg(template.definition, title=f"Graph of {template.name}")
    context = {
        "template": template,
        "form": form,
        "problems": shown.problems,
        "picture": picture,
        "secret_names": secret_store.secret_names(source) if source else [],
    }
    return render_template("workflows/use_template.html", **context), shown.status


@bp.route("/<workflow_id>/save-as-template", methods=["GET", "POST"])
def save_as_template(workflow_id: str) -> Page:
    workflow = pages.load(workflow_id)
    form = SaveAsTemplateForm()
    if not form.is_submitted():
        form.name.data = workflow.name
        if workflow.template_category:
            form.category.data = workflow.template_category.value

    def change() -> pages.Done:
        template = service.save_as_template(
            current_user,
            workflow,
            form.category.data,
            name=(form.name.data or "").strip() or None,
        )
        done = f"Saved as the template {template.name}."
        return pages.Done(url_for("workflows.gallery"), (done,))

    if not current_user.is_admin:
        shown: Response | pages.Shown = pages.Shown([ADMINS_ONLY], 403)
    else:
        shown = pages.submit(form, change)
    if isinstance(shown, Response):
        return shown
    context = {"workflow": workflow, "form": form, "problems": shown.problems}
    return render_template("workflows/save_as_template.html", **context), shown.status


@bp.route("/templates/<workflow_id>/edit", methods=["GET", "POST"])
def edit_template(workflow_id: str) -> Page:
    template = pages.load_template(workflow_id)
    form = TemplateForm()
    if not form.is_submitted():
        form.name.data, form.description.data = template.name, template.description
        if template.template_category:
            form.category.data = template.template_category.value

    def change() -> pages.Done:
        service.update_template(
            current_user,
            template,
            name=(form.name.data or "").strip(),
            description=(form.description.data or "").strip(),
            category=form.category.data,
        )
        return pages.Done(url_for("workflows.gallery"), (f"Template {template.name} saved.",))

    if not current_user.is_admin:
        shown: Response | pages.Shown = pages.Shown([ADMINS_ONLY], 403)
    else:
        shown = pages.submit(form, change)
    if isinstance(shown, Response):
        return shown
    if shown.refused:
        template = pages.load_template(workflow_id)
    context = {"template": template, "form": form, "problems": shown.problems}
    return render_template("workflows/edit_template.html", **context), shown.status


@bp.post("/templates/<workflow_id>/retire")
def retire_template(workflow_id: str) -> Page:
    template = pages.load_template(workflow_id)

    def change() -> pages.Done:
        service.retire_template(current_user, template)
        done = f"Template {template.name} retired: it is no longer offered in the gallery."
        return pages.Done(url_for("workflows.gallery"), (done,))

    def failure(error: ServiceError) -> tuple[list[str], int]:
        return [error.message], error.status

    shown = pages.submit(None, change, failure)
    if isinstance(shown, Response):
        return shown
    # Refused: the template's page, with why.
    form = TemplateForm(formdata=None, obj=None)
    form.name.data, form.description.data = template.name, template.description
    context = {"template": template, "form": form, "problems": shown.problems}
    return render_template("workflows/edit_template.html", **context), shown.status
