// Role assignments for the app's identity on one existing storage account, deployed into that account's
// resource group (source and backup accounts usually live outside the app's resource group).
targetScope = 'resourceGroup'

@description('Name of the existing storage account in this resource group.')
param storageAccountName string

@description('Object id of the principal that receives the roles (the Function App\'s managed identity).')
param principalId string

@description('Built-in role definition GUIDs to assign on the account.')
param roleDefinitionIds array

resource account 'Microsoft.Storage/storageAccounts@2023-05-01' existing = {
  name: storageAccountName
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
