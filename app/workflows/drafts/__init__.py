"""Editor drafts, by job: ``store.py`` keeps each user's draft of a workflow (find,
create, save, discard, its revision and pending secrets), ``edits.py`` changes a
draft's definition (nodes, edges, settings, merging a stale form), ``checks.py``
says what is wrong with it (the readiness checklist) and ``variables.py`` what its
templates can use; ``parts.py`` reads the (possibly invalid) definition for them.
Import from those modules; nothing is re-exported here.
"""
