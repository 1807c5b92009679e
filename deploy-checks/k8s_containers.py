"""Reads kubernetes/*.yaml and prints, as JSON, what each workload container gets: image, args,
and its environment (ConfigMap + Secret template + container env, in Kubernetes' order), plus
every KEDA ScaledObject's target and query, and each workload's scaling, drain, spread and
service-account facts. deploy-checks/tests/files.rs runs each container's
binary with that environment and `--print-config`."""
import glob
import json
import sys

import yaml

docs = []
for path in sorted(glob.glob(sys.argv[1] + "/*.yaml")):
    with open(path) as f:
        docs += [(path, d) for d in yaml.safe_load_all(f) if d]

maps = {}
for _, d in docs:
    if d["kind"] in ("ConfigMap", "Secret"):
        maps[d["metadata"]["name"]] = d.get("data") or d.get("stringData") or {}

containers, scaled, deployments, workloads, autoscaled = [], [], [], [], []
for path, d in docs:
    if d["kind"] in ("Deployment", "Job"):
        deployments.append(d["metadata"]["name"])
        pod = d["spec"]["template"]["spec"]
        workloads.append({
            "name": d["metadata"]["name"],
            "kind": d["kind"],
            "replicas_set": "replicas" in d["spec"],
            "automount_token": pod.get("automountServiceAccountToken", True),
            "spread_keys": [t["topologyKey"] for t in pod.get("topologySpreadConstraints", [])],
            "pre_stop": [bool(c.get("lifecycle", {}).get("preStop")) for c in pod["containers"]],
        })
        for c in d["spec"]["template"]["spec"]["containers"]:
            env = {}
            for source in c.get("envFrom", []):
                ref = source.get("configMapRef") or source.get("secretRef")
                env.update(maps[ref["name"]])
            for e in c.get("env", []):
                env[e["name"]] = e["value"]
            containers.append({"workload": d["metadata"]["name"], "image": c["image"], "args": c.get("args", []), "env": env})
    elif d["kind"] == "HorizontalPodAutoscaler":
        autoscaled.append(d["spec"]["scaleTargetRef"]["name"])
    elif d["kind"] == "ScaledObject":
        autoscaled.append(d["spec"]["scaleTargetRef"]["name"])
        scaled.append({"name": d["metadata"]["name"], "target": d["spec"]["scaleTargetRef"]["name"],
                       "queries": [t["metadata"]["query"] for t in d["spec"]["triggers"]]})

json.dump({"containers": containers, "scaled_objects": scaled, "deployments": deployments,
           "workloads": workloads, "autoscaled": autoscaled}, sys.stdout)
