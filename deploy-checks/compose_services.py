"""Reads a docker compose file and prints, as JSON in k8s_containers.py's shape, what each
container of our images gets: image, command, environment (with ${VAR:?...} filled with a
placeholder, as .env would). deploy-checks/tests/files.rs runs each binary with it."""
import json
import re
import sys

import yaml

with open(sys.argv[1]) as f:
    compose = yaml.safe_load(f)

placeholder = lambda m: "x" if "TOKEN" not in m.group(1) else "123456789:x"
containers = []
for name, service in compose["services"].items():
    image = service.get("image", "")
    if not image.startswith("obentchi/"):
        continue
    env = {k: re.sub(r"\$\{([A-Z_]+)[^}]*\}", placeholder, str(v)) for k, v in (service.get("environment") or {}).items()}
    containers.append({"workload": name, "image": image, "args": service.get("command", []), "env": env})
json.dump({"containers": containers, "services": sorted(compose["services"])}, sys.stdout)
