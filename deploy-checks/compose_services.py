"""Reads a docker compose file and prints, as JSON in k8s_containers.py's shape, what each
container of our images gets: image, command, environment (with ${VAR:?...} filled with a
placeholder, as .env would). deploy-checks/tests/files.rs runs each binary with it. Also each service's image,
build, pull policy, volumes, command and environment (`services_facts`), and the named volumes."""
import json
import re
import sys

import yaml

with open(sys.argv[1]) as f:
    compose = yaml.safe_load(f)

# What a filled-in .env gives: secrets of the length the binaries require.
FILLED = "0123456789abcdef0123456789abcdef"
placeholder = lambda m: FILLED if "TOKEN" not in m.group(1) else "123456789:" + FILLED
containers = []
for name, service in compose["services"].items():
    image = service.get("image", "")
    if not image.startswith("obentchi/"):
        continue
    env = {k: re.sub(r"\$\{([A-Z_]+)[^}]*\}", placeholder, str(v)) for k, v in (service.get("environment") or {}).items()}
    containers.append({"workload": name, "image": image, "args": service.get("command", []), "env": env})
facts = {name: {"image": s.get("image", ""), "build": "build" in s, "pull_policy": s.get("pull_policy"),
                "volumes": [str(v) for v in s.get("volumes", [])], "command": [str(c) for c in s.get("command", []) or []],
                "environment": {k: str(v) for k, v in (s.get("environment") or {}).items()}}
         for name, s in compose["services"].items()}
json.dump({"containers": containers, "services": sorted(compose["services"]), "services_facts": facts,
           "volumes": sorted(compose.get("volumes") or {})}, sys.stdout)
