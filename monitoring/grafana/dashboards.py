#!/usr/bin/env python3
"""Generates the Grafana dashboards of tge-swarm into monitoring/grafana/dashboards/.

    python3 monitoring/grafana/dashboards.py          # write the JSON files
    python3 monitoring/grafana/dashboards.py --check  # fail if the files differ from this

Every dashboard has a stable uid and a `datasource` variable (any Prometheus datasource).
Every query uses only metrics the swarm exports (shared/src/telemetry/) and Prometheus' own
`up`; scripts/check-ops.sh checks that, and runs every query against a live swarm.
"""
import json
import pathlib
import sys

OUT = pathlib.Path(__file__).resolve().parent / "dashboards"
DS = {"type": "prometheus", "uid": "${datasource}"}
RATE = "$__rate_interval"


def target(expr, legend="", ref="A", instant=False):
    out = {"datasource": DS, "expr": expr, "legendFormat": legend, "refId": ref}
    if instant:
        out["instant"] = True
        out["range"] = False
    return out


def panel(kind, title, targets, x, y, w=12, h=8, unit=None, description="", extra=None):
    field = {"defaults": {"custom": {}}, "overrides": []}
    if unit:
        field["defaults"]["unit"] = unit
    p = {
        "type": kind,
        "title": title,
        "description": description,
        "datasource": DS,
        "gridPos": {"x": x, "y": y, "w": w, "h": h},
        "targets": [dict(t, refId=chr(ord("A") + i)) for i, t in enumerate(targets)],
        "fieldConfig": field,
        "options": {},
    }
    if kind == "stat":
        p["options"] = {"reduceOptions": {"calcs": ["lastNotNull"], "fields": "", "values": False},
                        "colorMode": "value", "graphMode": "area", "textMode": "auto"}
    if kind == "timeseries":
        p["options"] = {"legend": {"displayMode": "list", "placement": "bottom"},
                        "tooltip": {"mode": "multi", "sort": "desc"}}
    if extra:
        p.update(extra)
    return p


def dashboard(uid, title, description, panels):
    for i, p in enumerate(panels):
        p["id"] = i + 1
    return {
        "uid": uid,
        "title": title,
        "description": description,
        "tags": ["tge-swarm"],
        "editable": False,
        "schemaVersion": 39,
        "version": 1,
        "refresh": "30s",
        "time": {"from": "now-6h", "to": "now"},
        "timezone": "utc",
        "templating": {"list": [{
            "name": "datasource",
            "label": "Datasource",
            "type": "datasource",
            "query": "prometheus",
            "current": {"text": "Prometheus", "value": "tge-prometheus"},
            "hide": 0,
        }]},
        "annotations": {"list": []},
        "links": [{"title": "tge-swarm", "type": "dashboards", "tags": ["tge-swarm"], "asDropdown": True}],
        "panels": panels,
    }


def quantile(q, metric, by, selector=""):
    return f"histogram_quantile({q}, sum by ({by}le) (rate({metric}_bucket{selector}[{RATE}])))"


overview = dashboard("tge-swarm-overview", "tge-swarm: overview",
    "The swarm at a glance: processes, flow of documents, detections, queues, dependencies.", [
    panel("stat", "Processes up", [target('sum(up{job=~"tge-swarm-.*"})', instant=True)], 0, 0, 4, 4,
          description="Swarm processes Prometheus scrapes successfully."),
    panel("stat", "TGE events created (24h)", [target("sum(increase(tge_swarm_events_created_total[24h]))", instant=True)], 4, 0, 4, 4),
    panel("stat", "Documents scored (24h)", [target("sum(increase(tge_swarm_documents_classified_total[24h]))", instant=True)], 8, 0, 4, 4),
    panel("stat", "Dependencies up (store, bus)", [target("min by (dependency) (tge_swarm_dependency_up)", "{{dependency}}", instant=True)], 12, 0, 6, 4,
          description="1 when every process reached it at its last probe."),
    panel("stat", "Source hosts with an open breaker", [target("max(tge_swarm_breakers_open)", instant=True)], 18, 0, 6, 4),
    panel("timeseries", "Documents fetched per second", [target(f"sum by (source_kind) (rate(tge_swarm_documents_fetched_total[{RATE}]))", "{{source_kind}}")], 0, 4, unit="ops"),
    panel("timeseries", "Documents scored per second", [target(f"sum by (verdict) (rate(tge_swarm_documents_classified_total[{RATE}]))", "{{verdict}}")], 12, 4, unit="ops"),
    panel("timeseries", "Work queue depth", [target("max by (queue, state) (tge_swarm_queue_depth)", "{{queue}} {{state}}")], 0, 12),
    panel("timeseries", "Fetch to stored event (p50, p95)", [
        target(quantile(0.5, "tge_swarm_stage_duration_seconds", "", '{stage="pipeline"}'), "p50"),
        target(quantile(0.95, "tge_swarm_stage_duration_seconds", "", '{stage="pipeline"}'), "p95")], 12, 12, unit="s",
          description="From the scrape task's enqueue to the event stored; the promise is under 30 s."),
])

agents = dashboard("tge-swarm-agents", "tge-swarm: agents and supervision",
    "Agent health as the queen sees it, restarts, supervisor decisions and breakers, scaling.", [
    panel("timeseries", "Agents by status", [target("sum by (kind, status) (tge_swarm_agents) > 0", "{{kind}} {{status}}")], 0, 0),
    panel("timeseries", "Oldest heartbeat per kind", [target("max by (kind) (tge_swarm_heartbeat_age_seconds)", "{{kind}}")], 12, 0, unit="s",
          description="Unhealthy after 3 missed heartbeats (30 s at the default interval)."),
    panel("timeseries", "Actor restarts", [target(f"sum by (kind) (increase(tge_swarm_actor_restarts_total[{RATE}]))", "{{kind}}")], 0, 8),
    panel("stat", "Restart budgets spent", [target("sum by (kind) (tge_swarm_actor_restart_budget_exhausted_total)", "{{kind}}", instant=True)], 12, 8, 12, 8),
    panel("timeseries", "Supervisor decisions", [target(f"sum by (agent, action, outcome) (increase(tge_swarm_supervisor_actions_total[{RATE}]))", "{{agent}} {{action}} {{outcome}}")], 0, 16),
    panel("timeseries", "Supervisor breakers (0 closed, 1 half-open, 2 open)", [target("max by (agent, component) (tge_swarm_supervisor_breaker_state)", "{{component}}")], 12, 16),
    panel("stat", "Supervisor alerts", [target("sum by (agent) (tge_swarm_supervisor_alerts_total)", "{{agent}}", instant=True)], 0, 24, 8, 6),
    panel("timeseries", "Desired replicas per process", [target("max by (kind) (tge_swarm_desired_replicas)", "{{kind}}")], 8, 24, 8, 6),
    panel("timeseries", "Passing instances in the registry", [target("max by (service) (tge_swarm_registry_instances)", "{{service}}")], 16, 24, 8, 6),
    panel("timeseries", "Commands applied", [target("sum by (action) (tge_swarm_commands_applied_total)", "{{action}}")], 0, 30, 8, 6),
    panel("timeseries", "Shared memory entries", [target("max(tge_swarm_memory_entries)", "entries")], 8, 30, 8, 6),
    panel("timeseries", "Synthesis snapshots", [target("sum(tge_swarm_synthesis_snapshots_total)", "snapshots")], 16, 30, 8, 6),
])

detection = dashboard("tge-swarm-detection", "tge-swarm: TGE detection",
    "What the swarm finds: events, scores, the sources they come from, and how fast.", [
    panel("timeseries", "Events created and merged per minute", [
        target(f"sum(rate(tge_swarm_events_created_total[{RATE}])) * 60", "created"),
        target(f"sum(rate(tge_swarm_events_merged_total[{RATE}])) * 60", "merged")], 0, 0),
    panel("timeseries", "Share of scored documents that are TGEs", [
        target(f'sum(rate(tge_swarm_documents_classified_total{{verdict="tge"}}[{RATE}])) / sum(rate(tge_swarm_documents_classified_total[{RATE}]))', "tge share")], 12, 0, unit="percentunit"),
    panel("bargauge", "Detection scores (last hour)", [
        target('sum by (le) (increase(tge_swarm_detection_score_bucket[1h]))', "{{le}}", instant=True)], 0, 8,
          description="Cumulative count of documents with a score at or below each bound.",
          extra={"options": {"displayMode": "gradient", "orientation": "vertical",
                             "reduceOptions": {"calcs": ["lastNotNull"], "fields": "", "values": False}}}),
    panel("timeseries", "Documents dropped by data quality", [target(f"sum by (reason) (rate(tge_swarm_documents_dropped_total[{RATE}]))", "{{reason}}")], 12, 8, unit="ops"),
    panel("timeseries", "Documents per source kind", [target(f"sum by (source_kind) (rate(tge_swarm_documents_fetched_total[{RATE}]))", "{{source_kind}}")], 0, 16, unit="ops"),
    panel("timeseries", "Stage latency p95", [target(quantile(0.95, "tge_swarm_stage_duration_seconds", "stage, "), "{{stage}}")], 12, 16, unit="s"),
    panel("timeseries", "Fetch to stored event p99", [target(quantile(0.99, "tge_swarm_stage_duration_seconds", "", '{stage="pipeline"}'), "p99")], 0, 24, 24, 6, unit="s"),
    panel("timeseries", "Sentence encoder: documents read and over budget", [target(f"sum by (outcome) (rate(tge_swarm_detection_sentence_stage_total[{RATE}]))", "{{outcome}}")], 0, 30, 24, 8, unit="ops",
          description="Documents near the threshold the third detection stage read, and those left to the n-gram stage because detection.sentence_stage_per_second was spent."),
    panel("timeseries", "Detection lag by source kind (p50, p99)", [
        target(quantile(0.5, "tge_swarm_detection_lag_seconds", "source_kind, "), "p50 {{source_kind}}"),
        target(quantile(0.99, "tge_swarm_detection_lag_seconds", "source_kind, "), "p99 {{source_kind}}")], 0, 38, 24, 8, unit="s",
          description="From a source publishing an event's first report (its own timestamp) to the swarm storing the event: exchange APIs should show seconds, news minutes."),
    panel("timeseries", "Rows deleted by retention per hour", [target("sum by (table) (increase(tge_swarm_retention_deleted_total[1h]))", "{{table}}")], 0, 46, 24, 6,
          description="Documents no event lists, and fingerprints, older than [retention] keeps them; a steady load should show a steady rate."),
])

sources = dashboard("tge-swarm-sources", "tge-swarm: sources and reliability",
    "Fetch outcomes per source, circuit breakers, retries into the dead-letter queue.", [
    panel("timeseries", "Fetches by outcome", [target(f"sum by (outcome) (rate(tge_swarm_source_fetches_total[{RATE}]))", "{{outcome}}")], 0, 0, unit="ops"),
    panel("bargauge", "Failing share per source (1h, top 10)", [target(
        'topk(10, sum by (source) (increase(tge_swarm_source_fetches_total{outcome=~"error|circuit_open"}[1h])) '
        '/ sum by (source) (increase(tge_swarm_source_fetches_total[1h])))', "{{source}}", instant=True)], 12, 0, unit="percentunit",
          extra={"options": {"displayMode": "gradient", "orientation": "horizontal",
                             "reduceOptions": {"calcs": ["lastNotNull"], "fields": "", "values": False}}}),
    panel("timeseries", "Source hosts with an open breaker", [target("max(tge_swarm_breakers_open)", "open")], 0, 8),
    panel("timeseries", "Breaker transitions", [target(f"sum by (state) (increase(tge_swarm_breaker_transitions_total[{RATE}]))", "{{state}}")], 12, 8),
    panel("timeseries", "Scrape tasks scheduled per minute", [target(f"sum(rate(tge_swarm_scrape_tasks_total[{RATE}])) * 60", "tasks")], 0, 16),
    panel("timeseries", "Fetch latency (p50, p95)", [
        target(quantile(0.5, "tge_swarm_stage_duration_seconds", "", '{stage="fetch"}'), "p50"),
        target(quantile(0.95, "tge_swarm_stage_duration_seconds", "", '{stage="fetch"}'), "p95")], 12, 16, unit="s"),
    panel("timeseries", "Redelivered work items", [target(f"sum by (queue) (increase(tge_swarm_queue_redelivered_total[{RATE}]))", "{{queue}}")], 0, 24),
    panel("timeseries", "Dead-letter queue", [target('max by (state) (tge_swarm_queue_depth{queue="swarm:queue:dead-letter"})', "{{state}}")], 12, 24),
])

api = dashboard("tge-swarm-api", "tge-swarm: API",
    "The analysts' REST API: traffic, errors and latency per route.", [
    panel("timeseries", "Requests per second by route", [target(f"sum by (route, method) (rate(tge_swarm_api_requests_total[{RATE}]))", "{{method}} {{route}}")], 0, 0, unit="reqps"),
    panel("timeseries", "Requests per second by status", [target(f"sum by (status) (rate(tge_swarm_api_requests_total[{RATE}]))", "{{status}}")], 12, 0, unit="reqps"),
    panel("timeseries", "Share of 5xx answers", [target(
        f'(sum(rate(tge_swarm_api_requests_total{{status=~"5.."}}[{RATE}])) or vector(0)) / sum(rate(tge_swarm_api_requests_total[{RATE}]))', "5xx share")], 0, 8, unit="percentunit"),
    panel("timeseries", "Latency (p50, p95, p99)", [
        target(quantile(0.5, "tge_swarm_api_request_duration_seconds", ""), "p50"),
        target(quantile(0.95, "tge_swarm_api_request_duration_seconds", ""), "p95"),
        target(quantile(0.99, "tge_swarm_api_request_duration_seconds", ""), "p99")], 12, 8, unit="s"),
    panel("timeseries", "p95 latency by route", [target(quantile(0.95, "tge_swarm_api_request_duration_seconds", "route, "), "{{route}}")], 0, 16, 24, 8, unit="s"),
    panel("timeseries", "GET /events page cache: lookups by result", [target(f"sum by (result) (rate(tge_swarm_api_cache_lookups_total[{RATE}]))", "{{result}}")], 0, 24, unit="reqps"),
    panel("timeseries", "GET /events page cache: hit share", [target(
        f'(sum(rate(tge_swarm_api_cache_lookups_total{{result="hit"}}[{RATE}])) or vector(0)) / sum(rate(tge_swarm_api_cache_lookups_total[{RATE}]))', "hit share")], 12, 24, unit="percentunit"),
    panel("timeseries", "Alert attempts by channel and outcome", [target(f"sum by (channel, outcome) (rate(tge_swarm_alert_attempts_total[{RATE}]))", "{{channel}} {{outcome}}")], 0, 32, unit="ops",
          description="Attempts to deliver alerts to subscriptions; retry and dead mean receivers failing."),
    panel("timeseries", "Alert latency (p50, p99)", [
        target(quantile(0.5, "tge_swarm_alert_latency_seconds", ""), "p50"),
        target(quantile(0.99, "tge_swarm_alert_latency_seconds", ""), "p99")], 12, 32, unit="s",
          description="From an event being stored to a subscription's receiver accepting its alert."),
])

DASHBOARDS = {"overview": overview, "agents": agents, "detection": detection, "sources": sources, "api": api}


def render(d):
    return json.dumps(d, indent=2, sort_keys=True) + "\n"


def main():
    check = "--check" in sys.argv[1:]
    stale = []
    for name, d in DASHBOARDS.items():
        path = OUT / f"tge-swarm-{name}.json"
        text = render(d)
        if check:
            if not path.exists() or path.read_text() != text:
                stale.append(str(path))
        else:
            path.write_text(text)
    if stale:
        sys.exit("dashboards out of date (run python3 monitoring/grafana/dashboards.py): " + ", ".join(stale))


if __name__ == "__main__":
    main()
