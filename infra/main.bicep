// vFXT DR on Azure: a Flex Consumption Function App (Python 3.11) with a system-assigned identity, its host
// storage and Application Insights, the Key Vault in the DR region, and the roles the identity needs.
// Deploy into the resource group of the app:  az deployment group create -g <rg> -f infra/main.bicep -p ...
targetScope = 'resourceGroup'

@description('Base name of the app\'s resources (function app, plan, host storage, insights).')
@minLength(3)
@maxLength(18)
param appName string

@description('Region of the Function App and its host storage. The DR region keeps the app alive when the primary region is lost.')
param location string = resourceGroup().location

@description('The DR region: the Key Vault with the encryption keys and credentials lives here.')
param drLocation string

@description('Name of the Key Vault (globally unique, 3-24 letters, digits and hyphens).')
@minLength(3)
@maxLength(24)
param keyVaultName string

@description('The DR plan as JSON (app setting VFXTDR_PLAN). It holds Key Vault secret names, never secret values.')
param planJson string

@description('Durable Functions task hub: letters and digits, starting with a letter; unique per app in a storage account.')
@minLength(3)
@maxLength(45)
param taskHubName string = 'vfxtdr'

@description('Storage accounts behind the protected core filers: [{ name, resourceGroup, subscriptionId? }]. The app only reads them.')
param sourceStorageAccounts array = []

@description('Backup storage accounts in the DR region: [{ name, resourceGroup, subscriptionId? }]. The app writes backups and the catalog there.')
param backupStorageAccounts array = []

@description('Optional secret values to seed into the vault (name -> value), e.g. cluster admin passwords. Prefer setting secrets out of band.')
@secure()
param initialSecrets object = {}

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

@description('Tags applied to every resource created here.')
param tags object = {}

var suffix = uniqueString(resourceGroup().id, appName)
var hostStorageName = take(toLower('${replace(appName, '-', '')}${suffix}'), 24)
var deploymentContainerName = 'app-package-${take(suffix, 8)}'

// Built-in role definition ids (the same in every tenant).
var roles = {
  keyVaultSecretsOfficer: 'b86a8fe4-44ce-4948-aee5-eccb2c155cd7'
  storageBlobDataReader: '2a2b9908-6ea1-4ae2-8e65-a410df84e7d1'
  storageBlobDataContributor: 'ba92f5b4-2d11-453d-a403-e96b0029c9fe'
  storageBlobDataOwner: 'b7e6dc6d-f1e8-4753-8033-0f276bb0955b'
  storageBlobDelegator: 'db58b8e5-c6ad-4a2a-8342-4190687cbf4a'
  storageQueueDataContributor: '974c5e8b-45b9-4653-ba55-5f855dd0fb88'
  storageTableDataContributor: '0a9a7e1f-b9d0-4cc4-a60d-0319b160aaa3'
  monitoringMetricsPublisher: '3913510d-42f4-4e42-8a64-420c390055eb'
}

// Identity-based AzureWebJobsStorage for Durable Functions needs blob, queue and table data roles.
var hostStorageRoles = [
  roles.storageBlobDataOwner
  roles.storageQueueDataContributor
  roles.storageTableDataContributor
]

resource logs 'Microsoft.OperationalInsights/workspaces@2023-09-01' = {
  name: '${appName}-logs'
  location: location
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
  location: location
  tags: tags
  kind: 'web'
  properties: {
    Application_Type: 'web'
    WorkspaceResourceId: logs.id
    DisableLocalAuth: true
  }
}

resource hostStorage 'Microsoft.Storage/storageAccounts@2023-05-01' = {
  name: hostStorageName
  location: location
  tags: tags
  kind: 'StorageV2'
  sku: {
    name: hostStorageSku
  }
  properties: {
    minimumTlsVersion: 'TLS1_2'
    supportsHttpsTrafficOnly: true
    allowBlobPublicAccess: false
    allowSharedKeyAccess: false
    defaultToOAuthAuthentication: true
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

resource flexPlan 'Microsoft.Web/serverfarms@2024-04-01' = {
  name: '${appName}-plan'
  location: location
  tags: tags
  kind: 'functionapp'
  sku: {
    name: 'FC1'
    tier: 'FlexConsumption'
  }
  properties: {
    reserved: true
  }
}

resource functionApp 'Microsoft.Web/sites@2024-04-01' = {
  name: appName
  location: location
  tags: tags
  kind: 'functionapp,linux'
  identity: {
    type: 'SystemAssigned'
  }
  properties: {
    serverFarmId: flexPlan.id
    httpsOnly: true
    siteConfig: {
      minTlsVersion: '1.2'
      ftpsState: 'Disabled'
      http20Enabled: true
      appSettings: [
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
      ]
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
    publicNetworkAccess: 'Enabled'
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

// Source accounts: read blobs and mint user-delegation SAS for server-side copies; never write.
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

// Backup accounts: write backups and the catalog; SAS for drills that copy a backup.
module backupRoles 'modules/storage-roles.bicep' = [for (account, i) in backupStorageAccounts: {
  name: take('${appName}-backup-roles-${i}', 64)
  scope: resourceGroup(contains(account, 'subscriptionId') ? account.subscriptionId : subscription().subscriptionId, account.resourceGroup)
  params: {
    storageAccountName: account.name
    principalId: functionApp.identity.principalId
    roleDefinitionIds: [
      roles.storageBlobDataContributor
      roles.storageBlobDelegator
    ]
  }
}]

output functionAppName string = functionApp.name
output principalId string = functionApp.identity.principalId
output keyVaultUri string = vault.properties.vaultUri
output hostStorageAccount string = hostStorage.name
