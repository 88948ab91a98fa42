#!/usr/bin/env python3
"""Checks of the operations stack that need more than a shell (run by scripts/check-ops.sh).

    ops_check.py static              rules, tests, dashboards and the code agree
    ops_check.py live PROMETHEUS_URL  every dashboard query returns data, every rule evaluates

Standard library only: it runs on a fresh machine before anything is installed.
"""
import glob
import json
import pathlib
import re
import sys
import time
import urllib.parse
import urllib.request

ROOT = pathlib.Path(__file__).resolve().parent.parent
TELEMETRY_DIR = ROOT / "shared/src/telemetry"
RULES = sorted(glob.glob(str(ROOT / "monitoring/prometheus/rules/*.yml")))
RULE_TESTS = sorted(glob.glob(str(ROOT / "monitoring/prometheus/tests/*.yml")))
DASHBOARDS = sorted(glob.glob(str(ROOT / "monitoring/grafana/dashboards/*.json")))
CODE_DIRS = ["shared/src", "agents/src", "memory-coordinator/src", "queen/src"]
HISTOGRAM_SUFFIXES = ("_bucket", "_sum", "_count")
METRIC = re.compile(r"\btge_swarm_[a-z0-9_]+")


def fail(problems):
    for problem in problems:
        print(f"ops_check: {problem}", file=sys.stderr)
    sys.exit(1)


def exported_metrics():
    """Metric names declared in shared/src/telemetry/ (constant name -> metric), and those the code
    records (metric -> constant): a metric counts as recorded when one of its emit
    functions that names it is called from the code."""
    text = "\n".join(path.read_text() for path in sorted(TELEMETRY_DIR.glob("*.rs")))
    declared = dict(
        re.findall(
            r'pub const ([A-Z_]+): Metric = (?:\w+\(\s*(?:MetricKind::\w+,\s*)?|Metric \{\s*name:\s*)"(tge_swarm_[a-z0-9_]+)"',
            text,
        )
    )
    # Each emit function's body, up to the next item at the left margin.
    emitters = {}
    for match in re.finditer(r"^pub fn ([a-z_]+)\(.*?^\}", text, re.S | re.M):
        body = match.group(0)
        emitters[match.group(1)] = set(re.findall(r"\b([A-Z_]+)\.name\b", body))
    sources = []
    for folder in CODE_DIRS:
        for path in (ROOT / folder).rglob("*.rs"):
            if path.parent != TELEMETRY_DIR:
                sources.append(path.read_text())
    code = "\n".join(sources)
    used = {}
    for function, consts in emitters.items():
        if function in ("describe", "initialise_counters"):
            continue
        if re.search(rf"telemetry::{function}\(", code):
            for const in consts:
                if const in declared:
                    used[declared[const]] = const
    # Read by name outside an emit function (the recorder's bucket settings).
    for const, name in declared.items():
        if re.search(rf"telemetry::{const}\b", code):
            used.setdefault(name, const)
    return declared, used


def base_name(metric):
    for suffix in HISTOGRAM_SUFFIXES:
        if metric.endswith(suffix):
            return metric[: -len(suffix)]
    return metric


def dashboard_targets():
    """(dashboard file, panel title, expr) for every query of every panel."""
    out = []
    for path in DASHBOARDS:
        board = json.loads(pathlib.Path(path).read_text())
        for panel in board["panels"]:
            for target in panel["targets"]:
                out.append((pathlib.Path(path).name, panel["title"], target["expr"]))
    return out


def static():
    problems = []
    declared, used = exported_metrics()
    exported = set(used)
    histograms = {name for name in exported if name.endswith("_seconds") or name.endswith("_score")}

    def check_names(where, text):
        for metric in set(METRIC.findall(text)):
            name = base_name(metric)
            if name not in exported:
                problems.append(f"{where}: {metric} is not a metric the code exports")
            elif name != metric and name not in histograms:
                problems.append(f"{where}: {metric}: {name} is not a histogram")

    alerts = []
    for path in RULES:
        text = pathlib.Path(path).read_text()
        check_names(pathlib.Path(path).name, text)
        alerts += re.findall(r"^\s*- alert: (\w+)", text, re.M)
    if not alerts:
        problems.append("no alert rules found")

    # Every alert has a test case that expects it to fire.
    tested = set()
    for path in RULE_TESTS:
        text = pathlib.Path(path).read_text()
        for match in re.finditer(r"alertname: (\w+)\n(\s+)exp_alerts:(.*?)(?=\n\s+- eval_time|\n  - name|\Z)", text, re.S):
            if "exp_labels" in match.group(3):
                tested.add(match.group(1))
    for alert in alerts:
        if alert not in tested:
            problems.append(f"alert {alert} has no rule test that expects it to fire")

    uids = set()
    for path in DASHBOARDS:
        board = json.loads(pathlib.Path(path).read_text())
        name = pathlib.Path(path).name
        if not board.get("uid") or board["uid"] in uids:
            problems.append(f"{name}: missing or duplicate uid")
        uids.add(board.get("uid"))
        variables = [v for v in board["templating"]["list"] if v.get("type") == "datasource"]
        if not variables:
            problems.append(f"{name}: no datasource variable")
        for panel in board["panels"]:
            if panel.get("datasource", {}).get("uid") != "${datasource}":
                problems.append(f"{name}: panel {panel['title']!r} does not use the datasource variable")
            if not panel.get("targets"):
                problems.append(f"{name}: panel {panel['title']!r} has no query")
    if len(DASHBOARDS) < 5:
        problems.append(f"expected 5 dashboards, found {len(DASHBOARDS)}")
    for name, title, expr in dashboard_targets():
        check_names(f"{name} / {title}", expr)

    if problems:
        fail(problems)
    print(f"ops_check: {len(alerts)} alerts, each with a firing test; "
          f"{len(dashboard_targets())} dashboard queries in {len(DASHBOARDS)} dashboards; "
          f"every metric named is one of the {len(exported)} the code exports")


def query(prometheus, expr):
    url = f"{prometheus}/api/v1/query?" + urllib.parse.urlencode({"query": expr})
    with urllib.request.urlopen(url, timeout=10) as response:
        body = json.load(response)
    if body.get("status") != "success":
        raise RuntimeError(f"query failed: {body}")
    return body["data"]["result"]


def live(prometheus, timeout):
    """Every panel query returns at least one series, within `timeout` seconds."""
    pending = [(name, title, expr.replace("$__rate_interval", "30s")) for name, title, expr in dashboard_targets()]
    deadline = time.monotonic() + timeout
    answered = 0
    while True:
        still = []
        for item in pending:
            try:
                result = query(prometheus, item[2])
            except Exception as err:  # a bad query is a failure, not a retry
                fail([f"{item[0]} / {item[1]}: {item[2]}: {err}"])
            if result:
                answered += 1
            else:
                still.append(item)
        pending = still
        if not pending or time.monotonic() > deadline:
            break
        time.sleep(2)
    if pending:
        fail([f"{name} / {title}: no data for {expr}" for name, title, expr in pending])
    with urllib.request.urlopen(f"{prometheus}/api/v1/rules", timeout=10) as response:
        groups = json.load(response)["data"]["groups"]
    rules = [rule for group in groups for rule in group["rules"]]
    broken = [f"rule {rule['name']}: {rule.get('lastError')}" for rule in rules if rule.get("health") != "ok"]
    if not rules:
        broken.append("Prometheus loaded no rules")
    if broken:
        fail(broken)
    print(f"ops_check: all {answered} dashboard queries returned data; {len(rules)} rules evaluate without error")


def main():
    if len(sys.argv) >= 2 and sys.argv[1] == "static":
        static()
    elif len(sys.argv) >= 3 and sys.argv[1] == "live":
        live(sys.argv[2].rstrip("/"), float(sys.argv[3]) if len(sys.argv) > 3 else 120)
    else:
        sys.exit(__doc__)


if __name__ == "__main__":
    main()
