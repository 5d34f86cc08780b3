"""``evctl``, the operator's command line: the central's HTTP API from a shell.

It speaks only HTTP to a central (URL and token from ``evctl login`` or
``EV_CENTRAL_URL``/``EV_TOKEN``) and imports nothing else of the central, so the
same program works from a laptop, a CI job or ``kubectl exec`` into the central's
pod (docs/operator-guide.md, k8s/README.md).
"""

from evcentral.ctl.cli import main

__all__ = ["main"]
