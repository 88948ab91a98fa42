#!/usr/bin/env python3
"""Checks of the stack test (scripts/check-stack.sh) that read JSON: each prints one line
and exits 0 when the check holds, 1 when it does not (yet), 2 on a usage error.

  events BASE EXPECTED [--insecure]   every project of EXPECTED (<project>\\t<ticker> lines)
                                      is exactly one event of GET BASE/api/v1/events, and no
                                      event names another project
  agents BASE KIND=N ...              GET BASE/api/v1/agents lists every agent healthy, and
                                      N distinct processes (nodes) of each KIND
  targets URL KIND=N ...              GET URL (/sd/targets) names N processes of each KIND
  prometheus BASE JOB=N ...           Prometheus at BASE scrapes N healthy targets of each JOB
  readyz JSON_FILE DEPENDENCY         a /readyz answer says DEPENDENCY is failing
  alert SINK_DUMP ALERTNAME           the webhook sink received ALERTNAME from Alertmanager
  subnets N                           prints N /24 subnets of 172.28.0.0/14 that no network of
                                      this Docker engine overlaps (not a check: for the setup)
"""

import ipaddress
import json
import ssl
import subprocess
import sys
import urllib.request


def get(url, insecure=False):
    context = None
    if insecure:
        context = ssl.create_default_context()
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
    with urllib.request.urlopen(url, timeout=10, context=context) as answer:
        return json.load(answer)


def counts(pairs):
    out = {}
    for pair in pairs:
        kind, _, number = pair.partition("=")
        if not number.isdigit():
            raise SystemExit(f"stack_probe: expected KIND=N, got {pair!r}")
        out[kind] = int(number)
    return out


def events(base, expected_file, insecure=False):
    expected = {}
    with open(expected_file, encoding="utf-8") as lines:
        for line in lines:
            project, ticker = line.rstrip("\n").split("\t")
            expected[project] = ticker
    found = []
    token = None
    while True:
        url = f"{base}/api/v1/events?page_size=200&sources_per_event=0"
        if token:
            url += f"&page_token={urllib.request.quote(token)}"
        page = get(url, insecure)
        found += page["events"]
        token = page.get("next_page_token")
        if not token:
            break
    by_project = {}
    for event in found:
        by_project.setdefault(event.get("project"), []).append(event)
    missing = sorted(set(expected) - set(by_project))
    twice = sorted(p for p, evs in by_project.items() if len(evs) > 1)
    other = sorted(str(p) for p in set(by_project) - set(expected))
    wrong_ticker = sorted(p for p, evs in by_project.items()
                          if p in expected and evs[0].get("token") != expected[p])
    print(f"events: {len(found)} for {len(expected)} announcements; missing {len(missing)} "
          f"{missing[:5]}; more than once {twice[:5]}; unexpected {other[:5]}; "
          f"wrong ticker {wrong_ticker[:5]}")
    return 0 if not (missing or twice or other or wrong_ticker) else 1


def agents(base, pairs):
    want = counts(pairs)
    listed = get(f"{base}/api/v1/agents")
    if isinstance(listed, dict):
        listed = listed.get("agents", [])
    nodes = {}
    unhealthy = []
    for agent in listed:
        kind = agent["kind"]
        node = agent["id"].split("/")[0]
        nodes.setdefault(kind, set()).add(node)
        if agent["status"] != "healthy":
            unhealthy.append(f"{agent['id']}:{agent['status']}")
    have = {kind: len(nodes.get(kind, ())) for kind in want}
    print(f"agents: {len(listed)} listed, processes per kind {have}, not healthy {unhealthy}")
    return 0 if have == want and not unhealthy else 1


def targets(url, pairs):
    want = counts(pairs)
    groups = get(url)
    have = {}
    for group in groups:
        kind = group["labels"].get("kind")
        have[kind] = have.get(kind, 0) + len(group["targets"])
    seen = {kind: have.get(kind, 0) for kind in want}
    print(f"sd/targets: {seen}")
    return 0 if seen == want else 1


def prometheus(base, pairs):
    want = counts(pairs)
    answer = get(f"{base}/api/v1/targets?state=active")
    have = {}
    for target in answer["data"]["activeTargets"]:
        job = target["labels"].get("job")
        if target.get("health") == "up":
            have[job] = have.get(job, 0) + 1
    seen = {job: have.get(job, 0) for job in want}
    print(f"prometheus targets up: {seen}")
    return 0 if seen == want else 1


def readyz(path, dependency):
    with open(path, encoding="utf-8") as answer:
        text = answer.read()
    try:
        body = json.loads(text)
    except ValueError:
        print(f"readyz: not JSON: {text[:200]!r}")
        return 1
    checks = body.get("checks", {})
    check = checks.get(dependency)
    failing = check is not None and not (check == "ok" or (isinstance(check, dict) and check.get("ok") is True))
    print(f"readyz: status {body.get('status')!r}, {dependency}: {json.dumps(check)[:160]}")
    return 0 if failing else 1


def alert(path, name):
    with open(path, encoding="utf-8") as dump:
        for line in dump:
            received = json.loads(line)
            body = received.get("body")
            if isinstance(body, dict) and "alerts" in body:
                for item in body["alerts"]:
                    if item.get("labels", {}).get("alertname") == name and item.get("status") == "firing":
                        print(f"alert: {name} firing, received at {received['path']}")
                        return 0
    print(f"alert: {name} not received")
    return 1


def subnets(n):
    """N free /24s, taken in order from 172.28.0.0/14: the Compose file's defaults (172.28.1.0/24
    and 172.28.2.0/24) come first when they are free."""
    ids = subprocess.run(["docker", "network", "ls", "-q"], check=True, capture_output=True,
                         text=True).stdout.split()
    taken = []
    if ids:
        out = subprocess.run(["docker", "network", "inspect", "-f",
                              "{{range .IPAM.Config}}{{.Subnet}} {{end}}", *ids],
                             check=True, capture_output=True, text=True).stdout
        taken = [ipaddress.ip_network(s, strict=False) for s in out.split() if ":" not in s]
    free = []
    for candidate in list(ipaddress.ip_network("172.28.0.0/14").subnets(new_prefix=24))[1:]:
        if not any(candidate.overlaps(t) for t in taken):
            free.append(str(candidate))
            if len(free) == n:
                print(" ".join(free))
                return 0
    print(f"subnets: fewer than {n} free /24s in 172.28.0.0/14 (taken: {taken})", file=sys.stderr)
    return 1


def main(argv):
    if len(argv) < 2:
        print(__doc__, file=sys.stderr)
        return 2
    command, args = argv[1], argv[2:]
    try:
        if command == "events":
            return events(args[0], args[1], "--insecure" in args[2:])
        if command == "agents":
            return agents(args[0], args[1:])
        if command == "targets":
            return targets(args[0], args[1:])
        if command == "prometheus":
            return prometheus(args[0], args[1:])
        if command == "readyz":
            return readyz(args[0], args[1])
        if command == "alert":
            return alert(args[0], args[1])
        if command == "subnets":
            return subnets(int(args[0]))
    except subprocess.CalledProcessError as err:
        print(f"{command}: {err}: {err.stderr.strip()}", file=sys.stderr)
        return 1
    except (OSError, ValueError, KeyError) as err:
        print(f"{command}: {err}")
        return 1
    print(f"stack_probe: unknown check {command!r}", file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv))
