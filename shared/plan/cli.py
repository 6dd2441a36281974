"""`python -m shared.plan validate FILE | example`: check a plan and explain its problems, or print one."""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any

from shared.core.clock import to_iso, utc_now
from shared.plan.load import PlanError, load_plan_file, load_plan_text

EXIT_INVALID = 2

# One short reason per rule, printed after each problem so the operator knows why the rule exists.
RULES: dict[str, str] = {
    "required": "the field has no default and the plan cannot work without it",
    "type": "the field has a fixed JSON type",
    "unknown-key": "unknown keys are refused so that a misspelt setting cannot be silently ignored",
    "range": "the value must lie in the range the app was built and tested for",
    "enum": "only the listed values have a meaning",
    "value": "the value has a required shape",
    "name": "cluster and filer names become parts of instance ids and 'cluster/filer' keys",
    "address": "the cluster's management API is reached at https://<address><rpc_path>",
    "region": "regions are compared to keep every backup in a different region from its source",
    "account-name": "Azure storage account names are 3-24 lowercase letters and digits",
    "container-name": "Azure container names: 3-63 lowercase letters, digits and single hyphens",
    "secret-name": "Key Vault secret names match ^[0-9a-zA-Z-]{1,127}$; the plan never holds secret values",
    "url": "blob endpoints are https URLs (http only for a loopback emulator) with no SAS or key in them",
    "endpoint-account": "the blob endpoint must address the account it is declared for",
    "keyvault-url": "the vault must be the DR region's Key Vault, addressed by its https root URL",
    "schedule": "the schedule is NCRONTAB in UTC: 6 fields with seconds first, or 5 without seconds",
    "tls": "the cluster's certificate must be trusted explicitly; only verify: false turns checking off, and "
    "for a host other than loopback only with acknowledge_insecure (the admin password goes to the peer)",
    "fingerprint": "a pinned certificate is named by its SHA-256 fingerprint",
    "unique": "names must be unique so that every filer and cluster is addressed unambiguously",
    "reference": "a filer can only name clusters declared in the plan",
    "regions-differ": "a backup in the source's region does not survive the loss of that region",
    "account-region": "one storage account lives in one region behind one endpoint",
    "backup-container": "the container behind a core filer is written only by the cluster, and each backup "
    "container belongs to exactly one filer",
    "generations": "backup.containers names generations a and b; generation c onwards is "
    "<container_prefix>-<letter>, so every generation's container is predictable",
    "catalog-container": "the catalog lives in its own container, never in a backup or source container",
    "json": "the plan must be one valid JSON document",
    "source": "the plan comes from the app setting VFXTDR_PLAN (JSON) or VFXTDR_PLAN_FILE (a path)",
    "drill-prefix": "drills copy a backup into a scratch container named drill-... and delete it afterwards: "
    "no container of a backup account may look like one",
    "drill": "whole-cluster drill parallelism is one setting for the plan, not per filer",
}

EXAMPLE: dict[str, Any] = {
    "version": 1,
    "keyvault_url": "https://vfxtdr-kv-eastus2.vault.azure.net",
    "schedule": "0 0 2 * * *",
    "rpo_hours": 26,
    "storage_auth": "identity",
    "short_offline_window": True,
    "catalog_container": "vfxtdr-catalog",
    "copy": {
        "engine": "copy",
        "concurrency": 64,
        "page_size": 5000,
        "poll_interval_seconds": 15,
        "pending_limit_seconds": 3600,
        "parallel_pages": 4,
        "pages_per_execution": 50,
    },
    "guard": {"max_delete_fraction": 0.10, "max_change_fraction": 0.5, "min_count": 100, "approval_timeout_hours": 24},
    "drill": {
        "probe": {
            "url": "https://drill-probe.internal.example/read",
            "key_secret": "drill-probe-key",
            "timeout_seconds": 600,
        },
        "sample_size": 20,
        "max_parallel": 2,
    },
    "clusters": [
        {
            "name": "primary",
            "management_address": "10.0.0.5",
            "rpc_path": "/cgi-bin/rpc2.py",
            "region": "westus2",
            "admin_user": "admin",
            "admin_password_secret": "primary-admin-password",
            "tls": {
                "fingerprint_sha256": "3F:1A:6C:22:9E:0B:47:D5:8A:11:C0:FE:72:39:BB:04:"
                "5D:E6:98:21:7C:AA:13:60:F4:0E:B2:55:C9:38:7D:E1"
            },
        },
    ],
    "dr_clusters": [
        {
            "name": "dr-east",
            "management_address": "10.1.0.5:443",
            "region": "eastus2",
            "admin_password_secret": "dr-east-admin-password",
            "tls": {"ca_file": "/home/site/wwwroot/certs/dr-ca.pem"},
        },
    ],
    "filers": [
        {
            "cluster": "primary",
            "name": "projects",
            "enabled": True,
            "max_offline_minutes": 30,
            "source": {
                "account": "avereprimarydata",
                "container": "projects",
                "blob_endpoint": "https://avereprimarydata.blob.core.windows.net",
                "region": "westus2",
            },
            "backup": {
                "account": "averedrbackup",
                "blob_endpoint": "https://averedrbackup.blob.core.windows.net",
                "region": "eastus2",
                "containers": ["projects-a", "projects-b"],
                "generations": 7,
                "container_prefix": "projects",
                "storage_key_secret": "averedrbackup-key",
            },
            "failover_cluster": "dr-east",
            "drill_schedule": "0 0 4 * * sun",
        },
        {
            "cluster": "primary",
            "name": "renders",
            "max_offline_minutes": 60,
            "source": {
                "account": "avereprimarydata",
                "container": "renders",
                "blob_endpoint": "https://avereprimarydata.blob.core.windows.net",
                "region": "westus2",
            },
            "backup": {
                "account": "averedrbackup",
                "blob_endpoint": "https://averedrbackup.blob.core.windows.net",
                "region": "eastus2",
                "storage_key_secret": "averedrbackup-key",
            },
        },
    ],
}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m shared.plan", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    validate = sub.add_parser("validate", help="check a plan file ('-' reads standard input)")
    validate.add_argument("file")
    sub.add_parser("example", help="print a complete, valid example plan")
    args = parser.parse_args(argv)
    if args.command == "example":
        print(json.dumps(EXAMPLE, indent=2))
        return 0
    try:
        plan = load_plan_text(sys.stdin.read(), "stdin") if args.file == "-" else load_plan_file(args.file)
    except PlanError as exc:
        print(f"plan invalid: {len(exc.details)} problem{'s' if len(exc.details) != 1 else ''}")
        for problem in exc.details:
            print(f"{problem}  -- {RULES.get(problem.rule, RULES['value'])}")
        return EXIT_INVALID
    print(f"plan OK: {len(plan.clusters)} clusters, {len(plan.filers)} filers")
    nxt = plan.parsed_schedule().next_after(utc_now())
    print(
        f"  {len(plan.dr_clusters)} DR clusters, {len(plan.enabled_filers())} filers enabled, "
        f"next scheduled run {to_iso(nxt)}"
    )
    for warning in plan.warnings():
        print(f"warning: {warning}")
    return 0
