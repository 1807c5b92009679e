"""Reads kubernetes/*.yaml and prints, as JSON, what each workload container gets: image, args,
and its environment (ConfigMap + Secret template + container env, in Kubernetes' order), plus
every KEDA ScaledObject's target and query, each workload's scaling, drain, spread,
service-account, ports, probes and init containers, every Service's ports and every Ingress's
annotations and backends. deploy-checks/tests/files.rs runs each container's
binary with that environment and `--print-config`."""
import glob
import json
import sys

import yaml

docs = []
for path in sorted(glob.glob(sys.argv[1] + "/*.yaml")):
    with open(path) as f:
        docs += [(path, d) for d in yaml.safe_load_all(f) if d]

# The Secret template's placeholders are refused by the binaries (files.rs checks that); here
# they are filled in, as whoever applies the template must, to check everything else.
FILLED = "0123456789abcdef0123456789abcdef"
maps, templates, config_maps = {}, {}, []
for _, d in docs:
    if d["kind"] in ("ConfigMap", "Secret"):
        data = d.get("data") or d.get("stringData") or {}
        maps[d["metadata"]["name"]] = {k: str(v).replace("CHANGE_ME", FILLED) for k, v in data.items()}
        if d["kind"] == "Secret":
            templates[d["metadata"]["name"]] = dict(data)
        else:
            config_maps.append({"name": d["metadata"]["name"], "immutable": d.get("immutable", False), "data": data})

containers, scaled, deployments, workloads, autoscaled, services, ingresses, policies = [], [], [], [], [], [], [], []
references = set()
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
            "scrape_port": d["spec"]["template"]["metadata"].get("annotations", {}).get("prometheus.io/port"),
            "ports": {p["name"]: p["containerPort"] for c in pod["containers"] for p in c.get("ports", [])},
            "probe_ports": [c[probe]["httpGet"]["port"] for c in pod["containers"]
                            for probe in ("readinessProbe", "livenessProbe") if probe in c],
            "images": [c["image"] for c in pod["containers"]],
            "init": [{"name": c["name"], "image": c["image"], "args": c.get("args", [])} for c in pod.get("initContainers", [])],
        })
        for c in pod.get("initContainers", []) + pod["containers"]:
            env = {}
            for source in c.get("envFrom", []):
                ref = source.get("configMapRef") or source.get("secretRef")
                references.add(ref["name"])
                env.update(maps[ref["name"]])
            for e in c.get("env", []):
                # A placeholder to fill in (the receivers' bot id), filled as the deployer must.
                env[e["name"]] = "123456789" if e["value"] == "CHANGE_ME" else e["value"]
            containers.append({"workload": d["metadata"]["name"], "image": c["image"], "args": c.get("args", []), "env": env})
    elif d["kind"] == "NetworkPolicy":
        policies.append({"name": d["metadata"]["name"], "spec": d["spec"]})
    elif d["kind"] == "Service":
        services.append({"name": d["metadata"]["name"],
                         "ports": [p["port"] for p in d["spec"]["ports"]],
                         "target_ports": [p.get("targetPort") for p in d["spec"]["ports"]]})
    elif d["kind"] == "Ingress":
        ingresses.append({"name": d["metadata"]["name"],
                          "annotations": d["metadata"].get("annotations", {}),
                          "routes": [{"path": p["path"], "service": p["backend"]["service"]["name"],
                                      "port": p["backend"]["service"]["port"].get("number")}
                                     for r in d["spec"]["rules"] for p in r["http"]["paths"]]})
    elif d["kind"] == "HorizontalPodAutoscaler":
        autoscaled.append(d["spec"]["scaleTargetRef"]["name"])
    elif d["kind"] == "ScaledObject":
        autoscaled.append(d["spec"]["scaleTargetRef"]["name"])
        scaled.append({"name": d["metadata"]["name"], "target": d["spec"]["scaleTargetRef"]["name"],
                       "queries": [t["metadata"]["query"] for t in d["spec"]["triggers"]]})

json.dump({"containers": containers, "scaled_objects": scaled, "deployments": deployments,
           "workloads": workloads, "autoscaled": autoscaled, "services": services,
           "ingresses": ingresses, "config_maps": config_maps, "secret_templates": templates,
           "network_policies": policies, "references": sorted(references)}, sys.stdout)
