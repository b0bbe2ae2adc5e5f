"""Runbooks: one package per area of the troubleshooting guide.

Each package's ``__init__`` declares its area (:func:`commands.areas.area`: services, alarm
routes, causal links, graph) and imports no AWS SDK; its ``checks`` module registers the
checks (:func:`commands.registry.check`).
"""
