"""The workflows feature's forms, by job: ``base.py`` (``NodeForm``, what every node form
shares, and the names the editor generates), ``mapping.py`` (each node form's one
declarative field <-> definition mapping), ``actions.py`` (webhook, Jira and Linear
nodes), ``nodes.py`` (condition, delay and trigger nodes, and ``form_class_for``),
``panels.py`` (the editor's forms around the graph: add node, add edge, settings, save)
and ``pages.py`` (the workflow pages' forms). Import from those modules; nothing is
re-exported here.
"""
