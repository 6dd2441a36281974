// vFXT DR on Azure, all in the DR region so that the app survives the loss of the primary region: a Flex
// Consumption Function App (Python 3.11, system-assigned identity) integrated into a VNet that reaches the clusters'
// private management addresses, its host storage (the Durable task hub too, unless the Durable Task Scheduler is
// chosen), Application Insights on Log Analytics, the Key Vault, the backup accounts and their protection, Easy
// Auth in front of the status page, log alerts, optional private endpoints, and the least-privilege role
// assignments (docs/roles.md).
// Deploy into the app's resource group:
//   az deployment group create -g <rg> -f infra/main.bicep -p @infra/main.parameters.example.json
targetScope = 'resourceGroup'

// --- the app -------------------------------------------------------------------------------------------------

@description('Base name of the app\'s resources (function app, plan, host storage, insights, vnet, alerts).')
@minLength(3)
@maxLength(18)
param appName string

@description('The DR region. The app, its host and task hub storage, Key Vault, monitoring, network and the backup accounts created here all live in it, so the app keeps working when the primary region is lost.')
param drLocation string

@description('Name of the Key Vault (globally unique, 3-24 letters, digits and hyphens).')
@minLength(3)
@maxLength(24)
param keyVaultName string

@description('The DR plan as JSON (app setting VFXTDR_PLAN). It holds Key Vault secret names, never secret values.')
param planJson string

@description('Durable Functions task hub: letters and digits, starting with a letter; one per app.')
@minLength(3)
@maxLength(45)
param taskHubName string = 'vfxtdr'

@description('Durable backend: AzureStorage (queues and tables in the host storage account) or DurableTaskScheduler (managed, identity based, with the DTS dashboard).')
@allowed([
  'AzureStorage'
  'DurableTaskScheduler'
])
param durableBackend string = 'AzureStorage'

@description('Durable Task Scheduler SKU (only with durableBackend = DurableTaskScheduler).')
@allowed([
  'Consumption'
  'Dedicated'
])
param dtsSkuName string = 'Consumption'

@description('Addresses allowed to reach the Durable Task Scheduler endpoint (IPv4/IPv6/CIDR). Callers also need an Entra ID role; narrow this to your NAT gateway\'s public IP where you have one.')
param dtsIpAllowlist array = [
  '0.0.0.0/0'
]

@description('Object id of an Entra ID group of operators who get the DTS dashboard (Durable Task Data Contributor on the task hub); empty for none.')
param dtsDashboardGroupId string = ''

@description('Replication of the app\'s host storage account.')
@allowed([
  'Standard_LRS'
  'Standard_ZRS'
])
param hostStorageSku string = 'Standard_ZRS'

@description('Memory of each Flex Consumption instance.')
@allowed([
  2048
  4096
])
param instanceMemoryMB int = 2048

@description('Most instances Flex Consumption may scale out to.')
@minValue(1)
@maxValue(1000)
param maximumInstanceCount int = 40

@description('Spread the plan over availability zones (needs a region with zones and ZRS host storage; the platform then keeps at least two always-ready instances per scale group, billed continuously).')
param zoneRedundant bool = false

@description('Optional secret values to seed into the vault (name -> value), e.g. cluster admin passwords. Prefer setting secrets out of band.')
@secure()
param initialSecrets object = {}

// --- storage accounts the app works on -----------------------------------------------------------------------

@description('Storage accounts behind the protected core filers: [{ name, resourceGroup, subscriptionId? }]. The app only reads them.')
param sourceStorageAccounts array = []

@description('Backup storage accounts this template creates and protects in the DR region: [{ name, resourceGroup? }] (resourceGroup defaults to this one, which must then be in the same subscription).')
param backupStorageAccounts array = []

@description('Backup storage accounts the operator brings (referenced, not changed, apart from the role assignments): [{ name, resourceGroup, subscriptionId? }]. Give them the same protection by hand (docs/deploy.md).')
param existingBackupStorageAccounts array = []

@description('Replication of the backup accounts created here. They already are the copy in another region; geo-replicating them again is opt-in.')
@allowed([
  'Standard_LRS'
  'Standard_ZRS'
  'Standard_GRS'
  'Standard_GZRS'
  'Standard_RAGRS'
  'Standard_RAGZRS'
])
param backupStorageSku string = 'Standard_ZRS'

@description('Days deleted or overwritten blobs, and deleted containers, of the backup accounts stay recoverable.')
@minValue(1)
@maxValue(365)
param backupSoftDeleteDays int = 14

@description('Previous blob versions in the backup accounts older than this many days are deleted by lifecycle management.')
@minValue(1)
param backupVersionRetentionDays int = 30

@description('Name prefix of the scratch containers failover drills create in the backup accounts.')
param drillContainerPrefix string = 'drill-'

@description('Days after their last change that blobs in drill scratch containers are deleted by lifecycle management.')
@minValue(1)
param drillRetentionDays int = 7

@description('Put a CanNotDelete lock on each backup account created here (deploying a lock needs Owner or User Access Administrator).')
param lockBackupAccounts bool = true

@description('Subnet ids allowed through the backup accounts\' firewall via the Microsoft.Storage service endpoint, typically the DR cluster\'s subnet. Only used with privateNetworking.')
param backupAllowedSubnetIds array = []

// --- network -------------------------------------------------------------------------------------------------

@description('Private endpoints (and private DNS zones) for Key Vault, the host storage and the backup accounts created here; their public endpoints are then closed (the backup accounts keep theirs only for backupAllowedSubnetIds).')
param privateNetworking bool = true

@description('Create the private DNS zones and link them to the VNet. false: the zones are managed elsewhere (a hub), and the private endpoints are registered there by policy.')
param createPrivateDnsZones bool = true

@description('Existing subnet for VNet integration (delegated to Microsoft.App/environments, /27 or larger); empty to create a VNet here.')
param existingIntegrationSubnetId string = ''

@description('Existing subnet for the private endpoints (with existingIntegrationSubnetId and privateNetworking).')
param existingPrivateEndpointSubnetId string = ''

@description('Address space of the VNet created here. It must not overlap the clusters\' VNets it is peered with.')
param vnetAddressPrefix string = '10.80.0.0/24'

@description('VNet integration subnet of the VNet created here (/27 or larger).')
param integrationSubnetPrefix string = '10.80.0.0/27'

@description('Private-endpoint subnet of the VNet created here.')
param privateEndpointSubnetPrefix string = '10.80.0.32/27'

// --- sign-in and alerts --------------------------------------------------------------------------------------

@description('Application (client) id of the Entra ID app registration Easy Auth uses for the status page.')
param authClientId string

@description('Tenant of that app registration.')
param authTenantId string = subscription().tenantId

@description('Optional Key Vault secret URI of the app registration\'s client secret (authorization-code flow). Empty: sign-in uses ID tokens only, no secret.')
param authClientSecretUri string = ''

@description('Resource id of the action group (Microsoft.Insights/actionGroups) that receives every alert.')
param actionGroupId string

@description('How long without a VFXTDR_TICK line counts as the app being silent.')
@allowed([
  'PT15M'
  'PT30M'
  'PT1H'
])
param missingTickWindow string = 'PT15M'

@description('Tags applied to every resource created here.')
param tags object = {}

var suffix = uniqueString(resourceGroup().id, appName)
var hostStorageName = take(toLower('${replace(appName, '-', '')}${suffix}'), 24)
var deploymentContainerName = 'app-package-${take(suffix, 8)}'
var useScheduler = durableBackend == 'DurableTaskScheduler'

// Built-in role definition ids (the same in every tenant). The one reviewed table: modules get ids from here.
var roles = {
  keyVaultSecretsOfficer: 'b86a8fe4-44ce-4948-aee5-eccb2c155cd7'
  storageBlobDataReader: '2a2b9908-6ea1-4ae2-8e65-a410df84e7d1'
  storageBlobDataContributor: 'ba92f5b4-2d11-453d-a403-e96b0029c9fe'
  storageBlobDataOwner: 'b7e6dc6d-f1e8-4753-8033-0f276bb0955b'
  storageBlobDelegator: 'db58b8e5-c6ad-4a2a-8342-4190687cbf4a'
  storageQueueDataContributor: '974c5e8b-45b9-4653-ba55-5f855dd0fb88'
  storageTableDataContributor: '0a9a7e1f-b9d0-4cc4-a60d-0319b160aaa3'
  monitoringMetricsPublisher: '3913510d-42f4-4e42-8a64-420c390055eb'
  durableTaskDataContributor: '0ad04412-c4d5-4796-b79c-f76d14c8d402'
}

// Identity-based AzureWebJobsStorage: the host needs blob (keys, timer locks, the code package); the Azure Storage
// Durable backend adds its queues and tables. With the Durable Task Scheduler those two roles are not granted.
var hostStorageRoles = useScheduler ? [
  roles.storageBlobDataOwner
] : [
  roles.storageBlobDataOwner
  roles.storageQueueDataContributor
  roles.storageTableDataContributor
]
var backupAccountRoles = [
  roles.storageBlobDataContributor
  roles.storageBlobDelegator
]

// --- monitoring ----------------------------------------------------------------------------------------------

resource logs 'Microsoft.OperationalInsights/workspaces@2023-09-01' = {
  name: '${appName}-logs'
  location: drLocation
  tags: tags
  properties: {
    sku: {
      name: 'PerGB2018'
    }
    retentionInDays: 90
  }
}

resource insights 'Microsoft.Insights/components@2020-02-02' = {
  name: '${appName}-insights'
  location: drLocation
  tags: tags
  kind: 'web'
  properties: {
    Application_Type: 'web'
    WorkspaceResourceId: logs.id
    DisableLocalAuth: true
  }
}

module alerts 'modules/alerts.bicep' = {
  name: take('${appName}-alerts', 64)
  params: {
    appName: appName
    location: drLocation
    insightsId: insights.id
    actionGroupId: actionGroupId
    missingTickWindow: missingTickWindow
    tags: tags
  }
}

// --- network -------------------------------------------------------------------------------------------------

var createNetwork = empty(existingIntegrationSubnetId)

module network 'modules/network.bicep' = if (createNetwork) {
  name: take('${appName}-network', 64)
  params: {
    name: '${appName}-vnet'
    location: drLocation
    addressPrefix: vnetAddressPrefix
    integrationSubnetPrefix: integrationSubnetPrefix
    privateEndpointSubnetPrefix: privateEndpointSubnetPrefix
    tags: tags
  }
}

var integrationSubnetId = createNetwork ? network.outputs.integrationSubnetId : existingIntegrationSubnetId
var privateEndpointSubnetId = createNetwork ? network.outputs.privateEndpointSubnetId : existingPrivateEndpointSubnetId
var vnetId = createNetwork ? network.outputs.vnetId : split(existingIntegrationSubnetId, '/subnets/')[0]

var storageSuffix = environment().suffixes.storage
var vaultDnsZone = 'privatelink.vaultcore.azure.net'
var privateDnsZoneNames = concat([
  vaultDnsZone
  'privatelink.blob.${storageSuffix}'
], useScheduler ? [] : [
  'privatelink.queue.${storageSuffix}'
  'privatelink.table.${storageSuffix}'
])
var dnsZoneNamesToCreate = privateNetworking && createPrivateDnsZones ? privateDnsZoneNames : []

resource privateDnsZones 'Microsoft.Network/privateDnsZones@2024-06-01' = [for zone in dnsZoneNamesToCreate: {
  name: zone
  location: 'global'
  tags: tags
}]

resource privateDnsLinks 'Microsoft.Network/privateDnsZones/virtualNetworkLinks@2024-06-01' = [for (zone, i) in dnsZoneNamesToCreate: {
  parent: privateDnsZones[i]
  name: '${appName}-vnet'
  location: 'global'
  tags: tags
  properties: {
    virtualNetwork: {
      id: vnetId
    }
    registrationEnabled: false
    // A storage account with a private endpoint elsewhere (a source account in the primary region) has no record
    // in these zones; fall back to public resolution instead of failing the lookup.
    resolutionPolicy: 'NxDomainRedirect'
  }
}]

// --- host storage (and the Durable task hub with the Azure Storage backend) -----------------------------------

resource hostStorage 'Microsoft.Storage/storageAccounts@2023-05-01' = {
  name: hostStorageName
  location: drLocation
  tags: tags
  kind: 'StorageV2'
  sku: {
    name: hostStorageSku
  }
  properties: {
    minimumTlsVersion: 'TLS1_2'
    supportsHttpsTrafficOnly: true
    allowBlobPublicAccess: false
    // The app reaches its host storage with its identity only; no key exists in any setting.
    allowSharedKeyAccess: false
    defaultToOAuthAuthentication: true
    allowCrossTenantReplication: false
    publicNetworkAccess: privateNetworking ? 'Disabled' : 'Enabled'
    networkAcls: {
      defaultAction: privateNetworking ? 'Deny' : 'Allow'
      bypass: 'AzureServices'
    }
  }
}

resource hostBlobService 'Microsoft.Storage/storageAccounts/blobServices@2023-05-01' = {
  parent: hostStorage
  name: 'default'
}

resource deploymentContainer 'Microsoft.Storage/storageAccounts/blobServices/containers@2023-05-01' = {
  parent: hostBlobService
  name: deploymentContainerName
  properties: {
    publicAccess: 'None'
  }
}

var hostStorageEndpointGroups = useScheduler ? [
  'blob'
] : [
  'blob'
  'queue'
  'table'
]

module hostStorageEndpoints 'modules/private-endpoint.bicep' = [for group in (privateNetworking ? hostStorageEndpointGroups : []): {
  name: take('${appName}-pe-host-${group}', 64)
  params: {
    name: '${hostStorageName}-${group}'
    location: drLocation
    subnetId: privateEndpointSubnetId
    targetId: hostStorage.id
    groupId: group
    privateDnsZoneId: createPrivateDnsZones ? resourceId('Microsoft.Network/privateDnsZones', 'privatelink.${group}.${storageSuffix}') : ''
    tags: tags
  }
  dependsOn: [
    privateDnsZones
  ]
}]

// --- Durable Task Scheduler (optional backend) ----------------------------------------------------------------

var schedulerName = '${appName}-dts'

module scheduler 'modules/durable-task-scheduler.bicep' = if (useScheduler) {
  name: take('${appName}-dts', 64)
  params: {
    schedulerName: schedulerName
    taskHubName: taskHubName
    location: drLocation
    skuName: dtsSkuName
    ipAllowlist: dtsIpAllowlist
    tags: tags
  }
}

// App settings that override host.json's storageProvider (AzureFunctionsJobHost__path__to__setting), so the same
// host.json serves both backends. The connection setting names no secret: the app's identity authenticates.
var schedulerAppSettings = useScheduler ? [
  {
    name: 'AzureFunctionsJobHost__extensions__durableTask__storageProvider__type'
    value: 'azureManaged'
  }
  {
    name: 'AzureFunctionsJobHost__extensions__durableTask__storageProvider__connectionStringName'
    value: 'DURABLE_TASK_SCHEDULER_CONNECTION_STRING'
  }
  {
    name: 'DURABLE_TASK_SCHEDULER_CONNECTION_STRING'
    value: 'Endpoint=${scheduler.outputs.endpoint};Authentication=ManagedIdentity'
  }
] : []

// --- the Function App ----------------------------------------------------------------------------------------

resource flexPlan 'Microsoft.Web/serverfarms@2024-04-01' = {
  name: '${appName}-plan'
  location: drLocation
  tags: tags
  kind: 'functionapp'
  sku: {
    name: 'FC1'
    tier: 'FlexConsumption'
  }
  properties: {
    reserved: true
    zoneRedundant: zoneRedundant
  }
}

var authSecretSettingName = 'MICROSOFT_PROVIDER_AUTHENTICATION_SECRET'
var authAppSettings = empty(authClientSecretUri) ? [] : [
  {
    name: authSecretSettingName
    value: '@Microsoft.KeyVault(SecretUri=${authClientSecretUri})'
  }
]

resource functionApp 'Microsoft.Web/sites@2024-04-01' = {
  name: appName
  location: drLocation
  tags: tags
  kind: 'functionapp,linux'
  identity: {
    type: 'SystemAssigned'
  }
  properties: {
    serverFarmId: flexPlan.id
    httpsOnly: true
    // All outbound traffic goes through the VNet: the clusters' private management addresses over peering, Key
    // Vault and storage over private endpoints.
    virtualNetworkSubnetId: integrationSubnetId
    // The HTTP API and the status page are the operators' door; Easy Auth and function keys guard them.
    publicNetworkAccess: 'Enabled'
    siteConfig: {
      minTlsVersion: '1.2'
      scmMinTlsVersion: '1.2'
      ftpsState: 'Disabled'
      http20Enabled: true
      appSettings: concat([
        {
          name: 'AzureWebJobsStorage__accountName'
          value: hostStorage.name
        }
        {
          name: 'APPLICATIONINSIGHTS_CONNECTION_STRING'
          value: insights.properties.ConnectionString
        }
        {
          name: 'APPLICATIONINSIGHTS_AUTHENTICATION_STRING'
          value: 'Authorization=AAD'
        }
        {
          name: 'VFXTDR_TASK_HUB'
          value: taskHubName
        }
        {
          name: 'VFXTDR_PLAN'
          value: planJson
        }
      ], schedulerAppSettings, authAppSettings)
    }
    functionAppConfig: {
      deployment: {
        storage: {
          type: 'blobContainer'
          value: '${hostStorage.properties.primaryEndpoints.blob}${deploymentContainerName}'
          authentication: {
            type: 'SystemAssignedIdentity'
          }
        }
      }
      scaleAndConcurrency: {
        maximumInstanceCount: maximumInstanceCount
        instanceMemoryMB: instanceMemoryMB
      }
      runtime: {
        name: 'python'
        version: '3.11'
      }
    }
  }
  dependsOn: [
    deploymentContainer
  ]
}

// Easy Auth (App Service authentication) with Entra ID. Authentication is required everywhere except the paths
// listed: the status page (/api/status) and anything added later sign in with Entra ID, while the function-key
// API, the anonymous health probe and the Durable status URLs (system key) keep working for API clients.
// Excluding the key routes (rather than AllowAnonymous everywhere with the page checking the caller itself) fails
// closed: a new route is behind sign-in until it is deliberately excluded. docs/deploy.md has the reasoning.
resource authSettings 'Microsoft.Web/sites/config@2024-04-01' = {
  parent: functionApp
  name: 'authsettingsV2'
  properties: {
    platform: {
      enabled: true
    }
    globalValidation: {
      requireAuthentication: true
      unauthenticatedClientAction: 'RedirectToLoginPage'
      redirectToProvider: 'azureactivedirectory'
      excludedPaths: [
        '/api/health'
        '/api/backups/*'
        '/api/filers/*'
        '/api/failovers/*'
        '/api/runs/*'
        '/runtime/webhooks/durabletask/*'
      ]
    }
    identityProviders: {
      azureActiveDirectory: {
        enabled: true
        registration: union({
          openIdIssuer: '${environment().authentication.loginEndpoint}${authTenantId}/v2.0'
          clientId: authClientId
        }, empty(authClientSecretUri) ? {} : {
          clientSecretSettingName: authSecretSettingName
        })
        validation: {
          allowedAudiences: [
            'api://${authClientId}'
            authClientId
          ]
        }
      }
    }
    login: {
      tokenStore: {
        enabled: false
      }
    }
    httpSettings: {
      requireHttps: true
    }
  }
}

// --- Key Vault (DR region) -----------------------------------------------------------------------------------

resource vault 'Microsoft.KeyVault/vaults@2023-07-01' = {
  name: keyVaultName
  location: drLocation
  tags: tags
  properties: {
    tenantId: subscription().tenantId
    sku: {
      family: 'A'
      name: 'standard'
    }
    enableRbacAuthorization: true
    enableSoftDelete: true
    softDeleteRetentionInDays: 90
    enablePurgeProtection: true
    publicNetworkAccess: privateNetworking ? 'Disabled' : 'Enabled'
    networkAcls: {
      defaultAction: privateNetworking ? 'Deny' : 'Allow'
      bypass: 'AzureServices'
    }
  }
}

resource seededSecrets 'Microsoft.KeyVault/vaults/secrets@2023-07-01' = [for secret in items(initialSecrets): {
  parent: vault
  name: secret.key
  properties: {
    value: secret.value
    contentType: 'text/plain'
  }
}]

// Who read or changed a secret (passwords, recovery files, passphrases) is worth keeping.
resource vaultDiagnostics 'Microsoft.Insights/diagnosticSettings@2021-05-01-preview' = {
  name: 'to-log-analytics'
  scope: vault
  properties: {
    workspaceId: logs.id
    logs: [
      {
        categoryGroup: 'audit'
        enabled: true
      }
    ]
  }
}

module vaultEndpoint 'modules/private-endpoint.bicep' = if (privateNetworking) {
  name: take('${appName}-pe-vault', 64)
  params: {
    name: '${keyVaultName}-vault'
    location: drLocation
    subnetId: privateEndpointSubnetId
    targetId: vault.id
    groupId: 'vault'
    privateDnsZoneId: createPrivateDnsZones ? resourceId('Microsoft.Network/privateDnsZones', vaultDnsZone) : ''
    tags: tags
  }
  dependsOn: [
    privateDnsZones
  ]
}

// --- role assignments in this resource group -----------------------------------------------------------------

resource vaultRole 'Microsoft.Authorization/roleAssignments@2022-04-01' = {
  name: guid(vault.id, functionApp.id, roles.keyVaultSecretsOfficer)
  scope: vault
  properties: {
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', roles.keyVaultSecretsOfficer)
    principalId: functionApp.identity.principalId
    principalType: 'ServicePrincipal'
  }
}

resource hostStorageRoleAssignments 'Microsoft.Authorization/roleAssignments@2022-04-01' = [for roleId in hostStorageRoles: {
  name: guid(hostStorage.id, functionApp.id, roleId)
  scope: hostStorage
  properties: {
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', roleId)
    principalId: functionApp.identity.principalId
    principalType: 'ServicePrincipal'
  }
}]

resource insightsRole 'Microsoft.Authorization/roleAssignments@2022-04-01' = {
  name: guid(insights.id, functionApp.id, roles.monitoringMetricsPublisher)
  scope: insights
  properties: {
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', roles.monitoringMetricsPublisher)
    principalId: functionApp.identity.principalId
    principalType: 'ServicePrincipal'
  }
}

// The Durable Task Scheduler's data role, scoped to the app's task hub only (not the whole scheduler). The same role
// for an operators' group, if given, opens the DTS dashboard for them.
resource schedulerRef 'Microsoft.DurableTask/schedulers@2026-02-01' existing = {
  name: schedulerName
}

resource taskHubRef 'Microsoft.DurableTask/schedulers/taskHubs@2026-02-01' existing = {
  parent: schedulerRef
  name: taskHubName
}

resource taskHubRole 'Microsoft.Authorization/roleAssignments@2022-04-01' = if (useScheduler) {
  name: guid(taskHubRef.id, functionApp.id, roles.durableTaskDataContributor)
  scope: taskHubRef
  properties: {
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', roles.durableTaskDataContributor)
    principalId: functionApp.identity.principalId
    principalType: 'ServicePrincipal'
  }
  dependsOn: [
    scheduler
  ]
}

resource taskHubDashboardRole 'Microsoft.Authorization/roleAssignments@2022-04-01' = if (useScheduler && !empty(dtsDashboardGroupId)) {
  name: guid(taskHubRef.id, dtsDashboardGroupId, roles.durableTaskDataContributor)
  scope: taskHubRef
  properties: {
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', roles.durableTaskDataContributor)
    principalId: dtsDashboardGroupId
    principalType: 'Group'
  }
  dependsOn: [
    scheduler
  ]
}

// --- source accounts (primary region) ------------------------------------------------------------------------

// Read blobs and mint user-delegation SAS for server-side copies; never write.
module sourceRoles 'modules/storage-roles.bicep' = [for (account, i) in sourceStorageAccounts: {
  name: take('${appName}-source-roles-${i}', 64)
  scope: resourceGroup(contains(account, 'subscriptionId') ? account.subscriptionId : subscription().subscriptionId, account.resourceGroup)
  params: {
    storageAccountName: account.name
    principalId: functionApp.identity.principalId
    roleDefinitionIds: [
      roles.storageBlobDataReader
      roles.storageBlobDelegator
    ]
  }
}]

// --- backup accounts (DR region) -----------------------------------------------------------------------------

// Created and protected here: soft delete, versioning + lifecycle, lock, diagnostics, firewall, roles.
module backupAccounts 'modules/backup-account.bicep' = [for (account, i) in backupStorageAccounts: {
  name: take('${appName}-backup-${i}', 64)
  scope: resourceGroup(contains(account, 'resourceGroup') ? account.resourceGroup : resourceGroup().name)
  params: {
    name: account.name
    location: drLocation
    skuName: backupStorageSku
    workspaceId: logs.id
    principalId: functionApp.identity.principalId
    roleDefinitionIds: backupAccountRoles
    lock: lockBackupAccounts
    blobSoftDeleteDays: backupSoftDeleteDays
    containerSoftDeleteDays: backupSoftDeleteDays
    versionRetentionDays: backupVersionRetentionDays
    drillContainerPrefix: drillContainerPrefix
    drillRetentionDays: drillRetentionDays
    publicNetworkAccess: privateNetworking && empty(backupAllowedSubnetIds) ? 'Disabled' : 'Enabled'
    networkDefaultAction: privateNetworking ? 'Deny' : 'Allow'
    allowedSubnetIds: privateNetworking ? backupAllowedSubnetIds : []
    tags: tags
  }
}]

module backupEndpoints 'modules/private-endpoint.bicep' = [for (account, i) in (privateNetworking ? backupStorageAccounts : []): {
  name: take('${appName}-pe-backup-${i}', 64)
  params: {
    name: '${account.name}-blob'
    location: drLocation
    subnetId: privateEndpointSubnetId
    targetId: resourceId(subscription().subscriptionId, contains(account, 'resourceGroup') ? account.resourceGroup : resourceGroup().name, 'Microsoft.Storage/storageAccounts', account.name)
    groupId: 'blob'
    privateDnsZoneId: createPrivateDnsZones ? resourceId('Microsoft.Network/privateDnsZones', 'privatelink.blob.${storageSuffix}') : ''
    tags: tags
  }
  dependsOn: [
    backupAccounts
    privateDnsZones
  ]
}]

// Brought by the operator: only the app's roles are added; their protection is the operator's (docs/deploy.md).
module existingBackupRoles 'modules/storage-roles.bicep' = [for (account, i) in existingBackupStorageAccounts: {
  name: take('${appName}-backup-roles-${i}', 64)
  scope: resourceGroup(contains(account, 'subscriptionId') ? account.subscriptionId : subscription().subscriptionId, account.resourceGroup)
  params: {
    storageAccountName: account.name
    principalId: functionApp.identity.principalId
    roleDefinitionIds: backupAccountRoles
  }
}]

output functionAppName string = functionApp.name
output principalId string = functionApp.identity.principalId
output keyVaultUri string = vault.properties.vaultUri
output hostStorageAccount string = hostStorage.name
output integrationSubnetId string = integrationSubnetId
output schedulerEndpoint string = useScheduler ? scheduler.outputs.endpoint : ''
output statusPageUrl string = 'https://${functionApp.properties.defaultHostName}/api/status'
