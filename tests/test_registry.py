from __future__ import annotations

import importlib
import pkgutil
import re

import commands.runbooks as runbooks
from commands import areas
from commands.fixes import catalogue
from commands.registry import all_checks, checks_for, runbook_names

DB_CHECKS = {
    "db.cluster_status",
    "db.sg_ingress_from_ecs",
    "db.endpoint_config",
    "db.serverless_capacity",
    "db.cpu",
    "db.connections",
    "db.slow_queries",
    "db.top_statements",
}
FIXES = {
    "rds.start_cluster": "low",
    "ecs.force_new_deployment": "low",
    "elbv2.raise_idle_timeout": "low",
    "sns.send_test_notification": "low",
    "cloudwatch.enable_alarm_actions": "low",
    "ecs.scale_service": "medium",
    "ecs.increase_task_memory": "medium",
    "rds.raise_max_capacity": "medium",
    "cloudwatch.disable_alarm_actions": "medium",
    "ec2.allow_ecs_to_aurora": "high",
    "wafv2.allowlist_ip": "high",
    "wafv2.raise_rate_limit": "high",
    "terraform.release_state_lock": "high",
}


def test_every_area_package_declares_its_area_and_registers_checks() -> None:
    checks = all_checks()
    declared = areas.discover()
    packages = [i.name for i in pkgutil.iter_modules(runbooks.__path__) if i.ispkg]
    assert sorted(packages) == sorted(declared)
    for name in packages:
        module = importlib.import_module(f"commands.runbooks.{name}")
        assert module.AREA is declared[name] and declared[name].module == module.__name__
        assert any(spec.module == f"{module.__name__}.checks" for spec in checks.values()), (
            f"{module.__name__}.checks registered no check"
        )
        assert declared[name].services, f"{name} declares no AWS service"


def test_causal_links_and_routes_name_known_checks_and_areas() -> None:
    known = set(all_checks())
    for link in areas.links():
        assert link.cause in known or link.cause == "*", f"link from unknown check {link.cause}"
        assert link.effect in known, f"link {link.cause} → unknown check {link.effect}"
        assert link.cause == "*" or link.cause.split(".")[0] in areas.names()
    for route in areas.default_routes():
        assert route.runbooks and set(route.runbooks) <= set(areas.names()), route


def test_an_unknown_area_or_link_is_refused_where_it_is_declared() -> None:
    import pytest

    from commands.registry import check

    with pytest.raises(ValueError, match="undeclared area"):
        check("nosuch.thing", title="x")
    with pytest.raises(ValueError, match="undeclared area"):
        check("db.thing", title="x", also_in=("nosuch",))


def test_db_runbook_has_every_design_check() -> None:
    assert {s.id for s in checks_for("db")} == DB_CHECKS
    assert "db" in runbook_names()
    # the perf runbook reuses the db load checks
    assert {"db.cpu", "db.connections", "db.serverless_capacity"} <= {
        s.id for s in checks_for("perf")
    }


DESIGN_CHECKS = {
    "ecs": {
        "ecs.service_running",
        "ecs.service_events",
        "ecs.stopped_tasks",
        "ecs.container_errors",
        "ecs.image_repository",
        "ecs.execution_role_ecr",
        "ecs.subnet_ips",
        "ecs.health_check",
        "ecs.memory_utilization",
        "ecs.task_churn",
    },
    "alb": {
        "alb.targets_healthy",
        "alb.health_check_path",
        "alb.sg_alb_to_ecs",
        "alb.idle_timeout",
        "alb.state",
        "alb.public_subnets",
        "alb.internet_gateway",
        "alb.listener_ingress",
    },
    "db": DB_CHECKS,
    "network": {"network.nat_gateways", "network.private_routes", "network.flow_logs"},
    "waf": {"waf.blocked_requests", "waf.sampled_blocks", "waf.rate_limit"},
    "perf": {
        "perf.target_response_time",
        "perf.ecs_cpu",
        "perf.ecs_memory",
        "db.cpu",
        "db.connections",
        "db.serverless_capacity",
    },
    "deploy": {"deploy.state_lock", "deploy.ecs_rollout"},
    "alarms": {"alarms.sns_subscriptions", "alarms.actions_enabled", "alarms.in_alarm"},
}


def test_every_design_check_id_is_registered() -> None:
    # the design's areas, and Omni's own beyond them ("changes": what changed, and who)
    assert set(runbook_names()) == set(DESIGN_CHECKS) | {"changes"}
    for area, ids in DESIGN_CHECKS.items():
        assert ids <= {s.id for s in checks_for(area)}, area


def test_proposed_fixes_are_catalogued() -> None:
    import inspect

    for spec in all_checks().values():
        source = inspect.getsource(spec.fn)
        for fix_id in re.findall(r'propose\(\s*"([a-z0-9_.]+)"', source):
            assert fix_id in catalogue(), (spec.id, fix_id)


def test_fix_catalogue_matches_design() -> None:
    declared = {k: v.risk.value for k, v in catalogue().items()}
    assert FIXES.items() <= declared.items()  # the design's fixes, at their risk; more may come


def test_a_fix_id_is_written_only_where_it_is_defined_and_where_it_is_proposed() -> None:
    """No parallel list of fixes anywhere: outside its own module, a fix id appears only in
    ``propose("<id>", …)`` calls (a check's, or a change's undo in ``commands/changes``)."""
    from pathlib import Path

    repo = Path(__file__).resolve().parent.parent
    sources = {
        p: p.read_text()
        for package in ("bot", "workers", "commands")
        for p in (repo / package).rglob("*.py")
    }
    for fix_id, spec in catalogue().items():
        home = Path(importlib.import_module(spec.fn.__module__).__file__ or "")
        for path, text in sources.items():
            if path == home or f'"{fix_id}"' not in text:
                continue
            proposed = len(re.findall(rf'propose\(\s*"{re.escape(fix_id)}"', text))
            assert proposed == text.count(f'"{fix_id}"'), (fix_id, path.relative_to(repo))
