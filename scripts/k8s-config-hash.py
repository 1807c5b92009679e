"""Names kubernetes/01-configmap.yaml's ConfigMap after its content and points every reference
at the new name. Run it after every edit of the ConfigMap, then apply everything:

    $KUBERNETES_VALIDATE_BIN's python (or any python3 with PyYAML) scripts/k8s-config-hash.py

The ConfigMap is immutable, so an edit cannot change what running pods read; under its new name
it is a new object, and the Deployments that reference it roll out with it. A pod's settings
change only when the pod is replaced, never under it (an in-place edit would reach restarted
pods piecemeal). Changing a queue's partitions still needs its own procedure: Deployments roll
one by one. `--check` only says whether the name matches the content (deploy-checks)."""
import glob
import hashlib
import os
import re
import sys

import yaml

ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "kubernetes")
BASE = "obentchi-config"


def content_hash(data):
    text = "".join(f"{k}={v}\n" for k, v in sorted(data.items()))
    return hashlib.sha256(text.encode()).hexdigest()[:10]


def main():
    path = os.path.join(ROOT, "01-configmap.yaml")
    with open(path) as f:
        config = yaml.safe_load(f)
    expected = f"{BASE}-{content_hash(config['data'])}"
    if "--check" in sys.argv:
        print(expected)
        return
    pattern = re.compile(rf"\b{BASE}(-[0-9a-f]{{10}})?\b")
    for manifest in sorted(glob.glob(os.path.join(ROOT, "*.yaml"))):
        with open(manifest) as f:
            text = f.read()
        renamed = pattern.sub(expected, text)
        if renamed != text:
            with open(manifest, "w") as f:
                f.write(renamed)
    print(expected)


main()
