"""The DR deployment's resources on the Bicep AST: region, network, backups, Durable backend, Easy Auth, alerts."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from pycep import BicepParser

from tests.fuzz.spec import app_routes
from tests.unit.app import test_access as access_tests
from tests.unit.infra.test_infra import (
    INFRA,
    Bicep,
    accessor,
    app_settings,
    body,
    condition,
    load_all,
    loop_source,
    module_call,
    param_default,
    resource,
    resources_of,
    ternary,
    variable,
)

ROOT = INFRA.parent


@pytest.fixture(scope="module")
def bicep() -> tuple[Bicep, dict[str, Bicep]]:
    return load_all(BicepParser())


def _function(node: Any, kind: str) -> dict[str, Any]:
    assert isinstance(node, dict) and node.get("function", {}).get("type") == kind, node
    return node["function"]["parameters"]


def _prefix_length(cidr: str) -> int:
    return int(cidr.rsplit("/", 1)[1])


# --- region --------------------------------------------------------------------------------------------------


def test_app_task_hub_storage_vault_and_everything_else_live_in_the_dr_region(bicep: tuple[Bicep, dict]) -> None:
    main, modules = bicep
    params = {n for n, kind in main.declared.items() if kind == "param"}
    assert "location" not in params  # one region parameter, no second place for the app to land
    assert param_default(main, "drLocation") is None  # required: the operator names the DR region
    located = {}
    for name, res in main.json["resources"].items():
        config = body(res["config"])
        if not res["existing"] and "location" in config:
            located[name] = config["location"]
    for name in ("functionApp", "flexPlan", "hostStorage", "vault", "logs", "insights"):
        assert located.pop(name) == "drLocation", name
    # private DNS zones and their links are global resources; nothing else is anywhere but the DR region
    assert located == {"privateDnsZones": "global", "privateDnsLinks": "global"}
    # every module that creates located resources is told the DR region, and its resources use what it is told
    for name, call in main.json["modules"].items():
        target = modules[call["detail"]["path"]]
        if "location" in {n for n, kind in target.declared.items() if kind == "param"}:
            assert body(call["config"])["params"]["location"] == "drLocation", name
    for path, module in modules.items():
        for name, res in module.json["resources"].items():
            config = body(res["config"])
            if "location" in config:
                assert config["location"] == "location", (path, name)
    # with the Azure Storage backend the task hub is in the host storage account, which is in the DR region
    assert accessor(app_settings(main)["AzureWebJobsStorage__accountName"]) == "hostStorage.name"


# --- network -------------------------------------------------------------------------------------------------


def test_vnet_integration_through_a_delegated_subnet(bicep: tuple[Bicep, dict]) -> None:
    main, modules = bicep
    (site,) = resources_of(main, "Microsoft.Web/sites").values()
    assert site["properties"]["virtualNetworkSubnetId"] == "integrationSubnetId"
    # a VNet is created unless the operator passes an existing, delegated subnet
    assert _function(variable(main, "createNetwork"), "empty") == {"item_to_test": "existingIntegrationSubnetId"}
    cond, created, existing = ternary(variable(main, "integrationSubnetId"))
    assert (cond, accessor(created), existing) == (
        "createNetwork",
        "network.outputs.integrationSubnetId",
        "existingIntegrationSubnetId",
    )
    assert condition(main.json["modules"]["network"]["config"]) == "createNetwork"
    assert param_default(main, "existingIntegrationSubnetId") == ""
    network = modules["modules/network.bicep"]
    (vnet,) = resources_of(network, "Microsoft.Network/virtualNetworks").values()
    subnets = {_resolve(network, s["name"]): s["properties"] for s in vnet["properties"]["subnets"]}
    integration = subnets["function-app"]
    assert [d["properties"]["serviceName"] for d in integration["delegations"]] == ["Microsoft.App/environments"]
    assert integration["networkSecurityGroup"] == {
        "id": {
            "operator": {"type": "property_accessor", "operands": {"operand_1": "integrationNsg", "operand_2": "id"}}
        }
    }
    assert "privateEndpointNetworkPolicies" not in integration  # nothing but the app in this subnet
    assert all("_" not in name for name in subnets)  # Flex Consumption refuses underscores in subnet names
    assert subnets["private-endpoints"]["networkSecurityGroup"]
    # Flex Consumption needs /27 or larger; the defaults in main and in the module agree
    for bicep_file in (main, network):
        assert _prefix_length(param_default(bicep_file, "integrationSubnetPrefix")) <= 27
    assert param_default(main, "integrationSubnetPrefix") == param_default(network, "integrationSubnetPrefix")
    assert module_call(main, "network")["params"]["integrationSubnetPrefix"] == "integrationSubnetPrefix"


def _resolve(bicep: Bicep, value: Any) -> Any:
    if isinstance(value, str) and bicep.declared.get(value) == "var":
        return variable(bicep, value)
    return value


def test_private_endpoints_and_their_dns_zones_are_an_option(bicep: tuple[Bicep, dict]) -> None:
    main, modules = bicep
    assert main.json["parameters"]["privateNetworking"]["type"] == "bool"
    assert param_default(main, "privateNetworking") is True
    # Key Vault: groupId vault, zone privatelink.vaultcore.azure.net
    vault_pe = main.json["modules"]["vaultEndpoint"]
    assert condition(vault_pe["config"]) == "privateNetworking"
    params = body(vault_pe["config"])["params"]
    assert params["groupId"] == "vault"
    assert accessor(params["targetId"]) == "vault.id"
    assert variable(main, "vaultDnsZone") == "privatelink.vaultcore.azure.net"
    # host storage: blob always, queue and table for the Azure Storage Durable backend
    host_pe = main.json["modules"]["hostStorageEndpoints"]["config"]
    assert ternary(loop_source(host_pe)) == ("privateNetworking", "hostStorageEndpointGroups", [])
    assert body(host_pe)["params"]["groupId"] == "group"
    cond, scheduler_groups, storage_groups = ternary(variable(main, "hostStorageEndpointGroups"))
    assert (cond, scheduler_groups, storage_groups) == ("useScheduler", ["blob"], ["blob", "queue", "table"])
    # backup accounts created here: blob
    backup_pe = main.json["modules"]["backupEndpoints"]["config"]
    assert ternary(loop_source(backup_pe)) == ("privateNetworking", "backupStorageAccounts", [])
    assert body(backup_pe)["params"]["groupId"] == "blob"
    # the zones, linked to the app's VNet
    zones = _function(variable(main, "privateDnsZoneNames"), "concat")
    assert zones["arg_1"] == ["vaultDnsZone", "privatelink.blob.${storageSuffix}"]
    assert accessor(variable(main, "storageSuffix")).endswith("suffixes.storage")
    links = resource(main, "privateDnsLinks")
    assert links["properties"]["virtualNetwork"] == {"id": "vnetId"}
    assert links["properties"]["registrationEnabled"] is False
    assert links["properties"]["resolutionPolicy"] == "NxDomainRedirect"
    # the module: one endpoint for the group, registered in the zone given
    endpoint_module = modules["modules/private-endpoint.bicep"]
    endpoint = resource(endpoint_module, "endpoint")
    (connection,) = endpoint["properties"]["privateLinkServiceConnections"]
    assert connection["properties"]["groupIds"] == ["groupId"]
    assert endpoint["properties"]["subnet"] == {"id": "subnetId"}
    assert resource(endpoint_module, "dnsZoneGroup")["properties"]["privateDnsZoneConfigs"][0]["properties"] == {
        "privateDnsZoneId": "privateDnsZoneId"
    }
    # with the option on, public access to the vault and the host storage closes
    for name in ("vault", "hostStorage"):
        props = resource(main, name)["properties"]
        assert ternary(props["publicNetworkAccess"]) == ("privateNetworking", "Disabled", "Enabled"), name
        assert ternary(props["networkAcls"]["defaultAction"]) == ("privateNetworking", "Deny", "Allow"), name


# --- backup accounts -----------------------------------------------------------------------------------------


def test_backup_accounts_are_protected(bicep: tuple[Bicep, dict]) -> None:
    main, modules = bicep
    module = modules["modules/backup-account.bicep"]
    account = resource(module, "account")["properties"]
    assert account["minimumTlsVersion"] == "TLS1_2"
    assert account["allowBlobPublicAccess"] is False
    assert account["supportsHttpsTrafficOnly"] is True
    assert account["allowSharedKeyAccess"] is True  # the Avere cluster's credential is the account key
    assert account["isHnsEnabled"] is False  # versioning needs a flat namespace
    blob = resource(module, "blobService")["properties"]
    assert blob["isVersioningEnabled"] is True
    assert blob["deleteRetentionPolicy"] == {
        "enabled": True,
        "days": "blobSoftDeleteDays",
        "allowPermanentDelete": False,
    }
    assert blob["containerDeleteRetentionPolicy"] == {"enabled": True, "days": "containerSoftDeleteDays"}
    rules = {r["name"]: r for r in resource(module, "lifecycle")["properties"]["policy"]["rules"]}
    versions = rules["age-out-old-versions"]
    assert versions["enabled"] is True
    assert versions["definition"]["actions"]["version"]["delete"] == {
        "daysAfterCreationGreaterThan": "versionRetentionDays"
    }
    drills = rules["age-out-drill-scratch"]["definition"]
    assert drills["filters"]["prefixMatch"] == ["drillContainerPrefix"]
    assert drills["actions"]["baseBlob"]["delete"] == {"daysAfterModificationGreaterThan": "drillRetentionDays"}
    assert drills["actions"]["version"]["delete"] == {"daysAfterCreationGreaterThan": 1}
    assert param_default(module, "drillContainerPrefix") == param_default(main, "drillContainerPrefix") == "drill-"
    lock = module.json["resources"]["deleteLock"]
    assert condition(lock["config"]) == "lock"
    assert body(lock["config"])["scope"] == "account"
    assert body(lock["config"])["properties"]["level"] == "CanNotDelete"
    diagnostics = resource(module, "blobDiagnostics")
    assert diagnostics["scope"] == "blobService"
    assert diagnostics["properties"]["workspaceId"] == "workspaceId"
    assert {log["category"] for log in diagnostics["properties"]["logs"] if log["enabled"]} == {
        "StorageWrite",
        "StorageDelete",
    }
    # main creates them in the DR region with the protection switched on, and only references the ones brought
    call = module_call(main, "backupAccounts")["params"]
    assert call["location"] == "drLocation"
    assert accessor(call["workspaceId"]) == "logs.id"
    assert call["lock"] == "lockBackupAccounts"
    assert param_default(main, "lockBackupAccounts") is True
    assert call["versionRetentionDays"] == "backupVersionRetentionDays"
    assert call["drillContainerPrefix"] == "drillContainerPrefix"
    assert ternary(call["networkDefaultAction"]) == ("privateNetworking", "Deny", "Allow")
    assert loop_source(main.json["modules"]["backupAccounts"]["config"]) == "backupStorageAccounts"
    assert loop_source(main.json["modules"]["existingBackupRoles"]["config"]) == "existingBackupStorageAccounts"
    assert module_call(main, "existingBackupRoles")["params"]["roleDefinitionIds"] == "backupAccountRoles"
    # the module's own defaults are the closed ones; main opens the public endpoint only for service-endpoint subnets
    assert param_default(module, "publicNetworkAccess") == "Disabled"
    assert param_default(module, "networkDefaultAction") == "Deny"


# --- Durable backend -----------------------------------------------------------------------------------------


def test_the_durable_backend_is_chosen_by_parameter(bicep: tuple[Bicep, dict]) -> None:
    main, modules = bicep
    backend = main.json["parameters"]["durableBackend"]
    assert backend["default"] == "AzureStorage"
    allowed = next(d for d in backend["decorators"] if d["type"] == "allowed")
    assert allowed["argument"] == ["AzureStorage", "DurableTaskScheduler"]
    assert condition(main.json["modules"]["scheduler"]["config"]) == "useScheduler"
    dts = modules["modules/durable-task-scheduler.bicep"]
    scheduler = resource(dts, "scheduler")
    assert scheduler["properties"]["ipAllowlist"] == "ipAllowlist"
    task_hub = resource(dts, "taskHub")
    assert (task_hub["parent"], task_hub["name"]) == ("scheduler", "taskHubName")
    assert dts.json["resources"]["taskHub"]["type"] == "Microsoft.DurableTask/schedulers/taskHubs"
    # the same task hub name as the app setting host.json reads
    assert module_call(main, "scheduler")["params"]["taskHubName"] == "taskHubName"
    # identity based: the data role for the app's identity, scoped to the task hub (not the whole scheduler)
    hub_ref = main.json["resources"]["taskHubRef"]
    assert hub_ref["existing"] is True
    assert hub_ref["type"] == "Microsoft.DurableTask/schedulers/taskHubs"
    assert body(hub_ref["config"])["name"] == "taskHubName"
    role = main.json["resources"]["taskHubRole"]
    assert condition(role["config"]) == "useScheduler"
    assert body(role["config"])["scope"] == "taskHubRef"
    # selected by app settings that override host.json's storage provider, connection by managed identity
    settings = app_settings(main)
    prefix = "AzureFunctionsJobHost__extensions__durableTask__storageProvider__"
    assert settings[prefix + "type"] == "azureManaged"
    connection = settings[prefix + "connectionStringName"]
    assert settings[connection] == "Endpoint=${scheduler.outputs.endpoint};Authentication=ManagedIdentity"
    assert ternary(variable(main, "schedulerAppSettings"))[0] == "useScheduler"
    # those settings name a real host.json path
    host = json.loads((ROOT / "host.json").read_text())
    assert "storageProvider" in host["extensions"]["durableTask"]
    assert host["extensions"]["durableTask"]["hubName"] == "%VFXTDR_TASK_HUB%"


# --- Easy Auth -----------------------------------------------------------------------------------------------


def test_easy_auth_guards_the_status_page_and_lets_function_key_clients_through(bicep: tuple[Bicep, dict]) -> None:
    """Easy Auth signs people in and injects their principal but blocks nothing (AllowAnonymous): excludedPaths
    can say only "this path" or "this prefix", and the key route POST /api/filers/{cluster}/{filer}/readd shares
    every prefix with the signed-in GET /api/filers/{cluster}/{filer}. So each route closes itself, and this
    compares the deployment with the routes the app registers: every one takes a function key, or is anonymous
    and then is the health probe or refuses a caller Easy Auth did not sign in (tests/unit/app/test_access.py
    checks that refusal for every anonymous route it finds)."""
    main, _ = bicep
    (auth,) = resources_of(main, "Microsoft.Web/sites/config").values()
    assert (auth["name"], auth["parent"]) == ("authsettingsV2", "functionApp")
    props = auth["properties"]
    assert props["platform"]["enabled"] is True  # on: it strips caller-written X-MS-CLIENT-* headers, sets its own
    assert "configFilePath" not in props["platform"]
    validation = props["globalValidation"]
    assert validation["requireAuthentication"] is False
    assert validation["unauthenticatedClientAction"] == "AllowAnonymous"
    # no path list whose matching rules would decide who gets in
    assert "excludedPaths" not in validation
    routes = app_routes()
    levels = {(r.method, r.path): r.auth_level for r in routes}
    assert {
        ("POST", "/backups/{cluster}/{filer}"),
        ("POST", "/filers/{cluster}/{filer}/readd"),
        ("POST", "/failovers/{cluster}/{filer}"),
    } <= {k for k, level in levels.items() if level == "FUNCTION"}
    anonymous = {r.function for r in routes if r.auth_level == "ANONYMOUS"}
    assert set(levels.values()) <= {"FUNCTION", "ANONYMOUS"}, levels  # ADMIN would need the master key
    # the signed-in views share their paths' prefixes with key routes (why no prefix rule can tell them apart)
    assert levels[("GET", "/filers/{cluster}/{filer}")] == "ANONYMOUS"
    assert levels[("POST", "/filers/{cluster}/{filer}/readd")] == "FUNCTION"
    assert anonymous == access_tests.PUBLIC | {"status_page", "list_filers", "get_filer"}, (
        f"anonymous routes {sorted(anonymous)}: a new one must refuse callers Easy Auth did not sign in "
        "(triggers/access.py) and be listed here after tests/unit/app/test_access.py covers it"
    )
    assert {"health"} == access_tests.PUBLIC
    aad = props["identityProviders"]["azureActiveDirectory"]
    assert aad["enabled"] is True
    registration = _function(aad["registration"], "union")["arg_1"]
    assert registration["clientId"] == "authClientId"
    assert registration["openIdIssuer"].endswith("${authTenantId}/v2.0")
    assert "api://${authClientId}" in aad["validation"]["allowedAudiences"]
    assert props["login"]["tokenStore"]["enabled"] is False
    assert props["httpSettings"]["requireHttps"] is True
    assert param_default(main, "authClientId") is None  # required: no deployment without sign-in in front
    tenant = param_default(main, "authTenantId")["operator"]["operands"]
    assert (tenant["operand_1"]["function"]["type"], tenant["operand_2"]) == ("subscription", "tenantId")


# --- alerts --------------------------------------------------------------------------------------------------


def test_four_log_alerts_go_to_the_action_group(bicep: tuple[Bicep, dict]) -> None:
    main, modules = bicep
    call = module_call(main, "alerts")["params"]
    assert accessor(call["insightsId"]) == "insights.id"
    assert call["actionGroupId"] == "actionGroupId"
    assert param_default(main, "actionGroupId") is None  # required
    alerts = modules["modules/alerts.bicep"]
    event_of = {
        "needs-attention": "VFXTDR_NEEDS_ATTENTION",
        "rpo-breach": "VFXTDR_RPO_BREACH",
        "drill-failed": "VFXTDR_DRILL_FAILED",
    }
    declared = variable(alerts, "eventAlerts")
    assert sorted(a["name"] for a in declared) == sorted(event_of)
    rules = resources_of(alerts, "Microsoft.Insights/scheduledQueryRules")
    assert set(rules) == {"eventRules", "missingTickRule"}
    assert loop_source(alerts.json["resources"]["eventRules"]["config"]) == "eventAlerts"
    for name, rule in rules.items():
        assert rule["kind"] == "LogAlert", name
        props = rule["properties"]
        assert props["scopes"] == ["insightsId"], name
        assert props["actions"]["actionGroups"] == ["actionGroupId"], name
        assert props["enabled"] is True, name
        assert props["evaluationFrequency"] == "PT5M", name
    # event rules: one line of the event is enough, per filer; each runs its own query (what the queries match
    # is checked against the app's own lines in test_alert_queries.py)
    (criterion,) = rules["eventRules"]["properties"]["criteria"]["allOf"]
    assert accessor(criterion["query"]) == "alert.query"
    for alert in declared:
        query = alert["query"]
        assert query.lstrip().startswith("traces"), alert["name"]
        assert f'startswith_cs "{event_of[alert["name"]]} "' in query, alert["name"]
        assert "by filer = tostring(f.filer)" in query, alert["name"]
    assert (criterion["operator"], criterion["threshold"]) == ("GreaterThan", 0)
    assert criterion["dimensions"][0]["name"] == "filer"
    # the app silent: no tick line in the window
    (tick,) = rules["missingTickRule"]["properties"]["criteria"]["allOf"]
    assert 'startswith_cs "VFXTDR_TICK "' in tick["query"]
    assert tick["query"].lstrip().startswith("traces")
    assert (tick["operator"], tick["threshold"], tick["metricMeasureColumn"]) == ("LessThan", 1, "ticks")
    assert rules["missingTickRule"]["properties"]["windowSize"] == "missingTickWindow"
    assert param_default(alerts, "missingTickWindow") == param_default(main, "missingTickWindow") == "PT15M"


def test_host_json_never_samples_the_lines_the_alerts_count() -> None:
    sampling = json.loads((ROOT / "host.json").read_text())["logging"]["applicationInsights"]["samplingSettings"]
    if sampling.get("isEnabled", True):
        assert "Trace" in sampling["excludedTypes"].split(";")


def test_example_parameters_file_is_the_one_the_docs_deploy() -> None:
    deploy = (ROOT / "docs" / "deploy.md").read_text()
    assert "az deployment group create -g" in deploy
    assert "-f infra/main.bicep -p @infra/main.parameters.example.json" in deploy
    assert Path(INFRA / "main.parameters.example.json").exists()
