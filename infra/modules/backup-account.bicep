// One backup storage account in the DR region, protected for its job: it holds the only copy of a core filer's
// data outside the primary region (generations A/B, the catalog, the manifests) and the DR cluster mounts it on
// failover. Deployed into the account's own resource group; main.bicep passes the role ids from its reviewed table.
targetScope = 'resourceGroup'

@description('Name of the backup storage account (3-24 lowercase letters and digits); the DR plan names it.')
@minLength(3)
@maxLength(24)
param name string

@description('The DR region.')
param location string = resourceGroup().location

@description('Replication. The account is already the copy in another region; geo-replicating it again is opt-in.')
@allowed([
  'Standard_LRS'
  'Standard_ZRS'
  'Standard_GRS'
  'Standard_GZRS'
  'Standard_RAGRS'
  'Standard_RAGZRS'
])
param skuName string = 'Standard_ZRS'

@description('Resource id of the Log Analytics workspace that receives the blob service\'s write and delete logs.')
param workspaceId string

@description('Object id of the Function App\'s managed identity.')
param principalId string

@description('Built-in role definition GUIDs the identity gets on the account (main.bicep\'s reviewed table).')
param roleDefinitionIds array

@description('Put a CanNotDelete lock on the account (it blocks deleting the account and its resource group, not data-plane deletes).')
param lock bool = true

@description('Days a deleted or overwritten blob (or version) stays recoverable.')
@minValue(1)
@maxValue(365)
param blobSoftDeleteDays int = 14

@description('Days a deleted container stays recoverable.')
@minValue(1)
@maxValue(365)
param containerSoftDeleteDays int = 14

@description('Previous versions older than this many days are deleted by the lifecycle rule.')
@minValue(1)
param versionRetentionDays int = 30

@description('Name prefix of the scratch containers drills create; their blobs and versions age out quickly.')
param drillContainerPrefix string = 'drill-'

@description('Days after their last change that blobs in drill scratch containers are deleted.')
@minValue(1)
param drillRetentionDays int = 7

@description('Public endpoint: Disabled when the app and the DR cluster use private endpoints only; Enabled when subnets reach it through service endpoints (allowedSubnetIds) or private networking is off.')
@allowed([
  'Enabled'
  'Disabled'
])
param publicNetworkAccess string = 'Disabled'

@description('Default action of the account firewall: Deny lets only private endpoints, allowedSubnetIds and trusted Azure services in.')
@allowed([
  'Allow'
  'Deny'
])
param networkDefaultAction string = 'Deny'

@description('Subnet ids (with the Microsoft.Storage service endpoint) allowed through the firewall: typically the DR cluster\'s subnet.')
param allowedSubnetIds array = []

@description('Tags applied to every resource created here.')
param tags object = {}

resource account 'Microsoft.Storage/storageAccounts@2023-05-01' = {
  name: name
  location: location
  tags: tags
  kind: 'StorageV2'
  sku: {
    name: skuName
  }
  properties: {
    accessTier: 'Hot'
    minimumTlsVersion: 'TLS1_2'
    supportsHttpsTrafficOnly: true
    allowBlobPublicAccess: false
    // Shared-key access stays ON on purpose: an Avere cluster authenticates to its cloud core filer with the
    // storage account key (its cloud credential), and the DR cluster mounts this account on failover. The app
    // itself never uses the key for data access (Entra ID roles below); the key lives in Key Vault only for the
    // cluster's credential.
    allowSharedKeyAccess: true
    defaultToOAuthAuthentication: true
    allowCrossTenantReplication: false
    // Versioning (below) does not work with a hierarchical namespace; Avere writes a flat object namespace.
    isHnsEnabled: false
    publicNetworkAccess: publicNetworkAccess
    networkAcls: {
      defaultAction: networkDefaultAction
      bypass: 'AzureServices'
      virtualNetworkRules: [for subnetId in allowedSubnetIds: {
        id: subnetId
        action: 'Allow'
      }]
      ipRules: []
    }
    encryption: {
      keySource: 'Microsoft.Storage'
      requireInfrastructureEncryption: true
      services: {
        blob: {
          enabled: true
          keyType: 'Account'
        }
      }
    }
  }
}

resource blobService 'Microsoft.Storage/storageAccounts/blobServices@2023-05-01' = {
  parent: account
  name: 'default'
  properties: {
    // An overwrite keeps the previous version; a deleted blob leaves its previous version behind.
    isVersioningEnabled: true
    deleteRetentionPolicy: {
      enabled: true
      days: blobSoftDeleteDays
      // false: soft-deleted versions and snapshots cannot be purged before their retention ends
      allowPermanentDelete: false
    }
    containerDeleteRetentionPolicy: {
      enabled: true
      days: containerSoftDeleteDays
    }
  }
}

// Lifecycle management: versioning keeps every overwritten generation, so old versions are aged out; drills write
// scratch containers with a predictable prefix whose blobs (and the versions their deletes leave) go quickly.
// Lifecycle rules act on blobs only: a deleted scratch container is kept by container soft delete, then purged.
resource lifecycle 'Microsoft.Storage/storageAccounts/managementPolicies@2023-05-01' = {
  parent: account
  name: 'default'
  properties: {
    policy: {
      rules: [
        {
          name: 'age-out-old-versions'
          enabled: true
          type: 'Lifecycle'
          definition: {
            filters: {
              blobTypes: [
                'blockBlob'
              ]
            }
            actions: {
              version: {
                delete: {
                  daysAfterCreationGreaterThan: versionRetentionDays
                }
              }
            }
          }
        }
        {
          name: 'age-out-drill-scratch'
          enabled: true
          type: 'Lifecycle'
          definition: {
            filters: {
              blobTypes: [
                'blockBlob'
              ]
              prefixMatch: [
                drillContainerPrefix
              ]
            }
            actions: {
              baseBlob: {
                delete: {
                  daysAfterModificationGreaterThan: drillRetentionDays
                }
              }
              snapshot: {
                delete: {
                  daysAfterCreationGreaterThan: 1
                }
              }
              version: {
                delete: {
                  daysAfterCreationGreaterThan: 1
                }
              }
            }
          }
        }
      ]
    }
  }
  dependsOn: [
    blobService
  ]
}

// Writes and deletes are the audit trail of a backup account (who changed or removed backup data); reads are left
// out on purpose: a failover reads everything, and the copy engine's verification reads a lot.
resource blobDiagnostics 'Microsoft.Insights/diagnosticSettings@2021-05-01-preview' = {
  name: 'to-log-analytics'
  scope: blobService
  properties: {
    workspaceId: workspaceId
    logs: [
      {
        category: 'StorageWrite'
        enabled: true
      }
      {
        category: 'StorageDelete'
        enabled: true
      }
    ]
    metrics: [
      {
        category: 'Transaction'
        enabled: true
      }
    ]
  }
}

// A CanNotDelete lock stops the account (and its resource group) being deleted through Azure Resource Manager. It
// does not stop data-plane deletes: soft delete and versioning above cover those.
resource deleteLock 'Microsoft.Authorization/locks@2020-05-01' = if (lock) {
  name: '${name}-cannot-delete'
  scope: account
  properties: {
    level: 'CanNotDelete'
    notes: 'vFXT DR backup account: holds the only copy of protected core filers outside the primary region.'
  }
}

resource assignments 'Microsoft.Authorization/roleAssignments@2022-04-01' = [for roleId in roleDefinitionIds: {
  name: guid(account.id, principalId, roleId)
  scope: account
  properties: {
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', roleId)
    principalId: principalId
    principalType: 'ServicePrincipal'
  }
}]

output id string = account.id
output blobEndpoint string = account.properties.primaryEndpoints.blob
