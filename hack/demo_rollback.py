"""The demo's automatic rollback: load through the router, the primary hung for good, the
operator rolls back to stable on its own (no client sees an error), then an SRE's retry brings
the primary back. Run by hack/demo.sh against the sample it applied.

    python hack/demo_rollback.py KUBECONFIG NAMESPACE NAME
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from pizza_load.loadgen import pizza_images, summary  # noqa: E402

from tests.e2e.product import Kubectl  # noqa: E402
from tests.e2e.rollback import Scenario, freeze, router_load, thaw  # noqa: E402
from tests.support.waiting import eventually  # noqa: E402


def main() -> None:
    kubeconfig, namespace, name = sys.argv[1:4]
    sc = Scenario(Kubectl(Path(kubeconfig)), namespace, name)
    gen = router_load(sc, pizza_images(12)).start()
    print("8 requests a second through the router; waiting for a Healthy check of the primary")
    eventually(
        lambda: sc.status().get("analysis", {}).get("primary", {}).get("verdict") == "Healthy",
        120,
        "a Healthy check",
        every=1.0,
    )
    primary = sc.running_pods("primary")
    fault = time.time()
    freeze(primary)
    print(f"primary {primary[0]['metadata']['name']} frozen (SIGSTOP), and it stays frozen")
    try:
        last = ""
        while sc.mode() != "stable":
            check = sc.status().get("analysis", {}).get("primary", {})
            line = (
                f"  t+{time.time() - fault:4.0f} s  mode=primary  check={check.get('verdict')} "
                f"{check.get('reasons')} failures in a row={check.get('consecutiveFailures')}"
            )
            if line.split("  ", 2)[2] != last:
                print(line)
                last = line.split("  ", 2)[2]
            time.sleep(1)
            if time.time() - fault > 120:
                raise SystemExit("no rollback within 120 s")
        rolled = time.time() - fault
        eventually(
            lambda: sc.deployment("primary")["spec"]["replicas"] == 0, 30, "primary at 0", every=1.0
        )
    finally:
        thaw(primary)
    time.sleep(3)
    during = summary(gen.records, fault, time.time() - 1)
    print(f"rolled back to stable {rolled:.1f} s after the fault; routing ConfigMap says "
          f"{sc.routing_mode()!r}; primary scaled to 0")  # fmt: skip
    print(f"requests during the fault: {during.sent} sent, {during.answered} answered "
          f"(by {during.by_model}), {during.unanswered} not answered")  # fmt: skip
    print("status.lastRollback:", json.dumps(sc.status()["lastRollback"], indent=1))
    retried = time.time()
    print(f"\nan SRE retries: kubectl -n {namespace} annotate pmd/{name} pizza.ai/retry=1")
    sc.annotate("pizza.ai/retry", str(int(retried)))
    eventually(lambda: sc.mode() == "primary", 60, "mode primary", every=1.0)
    eventually(
        lambda: any(r.t > retried and r.model_used and r.model_used == sc.get()["spec"]
                    ["primary"]["model"]["name"] for r in gen.records),
        240,
        "answers from the primary", every=1.0,
    )  # fmt: skip
    print(f"back on the primary {time.time() - retried:.1f} s after the retry")
    gen.stop()


if __name__ == "__main__":
    main()
