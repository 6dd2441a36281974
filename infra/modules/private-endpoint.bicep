// One private endpoint (a resource's sub-resource such as a vault or a storage account's blob service) in the
// private-endpoint subnet, registered in its private DNS zone when one is given.
targetScope = 'resourceGroup'

@description('Name of the private endpoint.')
param name string

@description('Region of the private endpoint: the region of its virtual network.')
param location string = resourceGroup().location

@description('Resource id of the private-endpoint subnet.')
param subnetId string

@description('Resource id of the resource the endpoint connects to.')
param targetId string

@description('The sub-resource (group id): vault, blob, queue or table.')
@allowed([
  'vault'
  'blob'
  'queue'
  'table'
])
param groupId string

@description('Resource id of the private DNS zone for the group (privatelink.vaultcore.azure.net, privatelink.blob...). Empty: DNS is managed elsewhere (e.g. a hub\'s zones and Azure Policy).')
param privateDnsZoneId string = ''

@description('Tags applied to every resource created here.')
param tags object = {}

resource endpoint 'Microsoft.Network/privateEndpoints@2024-05-01' = {
  name: name
  location: location
  tags: tags
  properties: {
    subnet: {
      id: subnetId
    }
    privateLinkServiceConnections: [
      {
        name: name
        properties: {
          privateLinkServiceId: targetId
          groupIds: [
            groupId
          ]
        }
      }
    ]
  }
}

resource dnsZoneGroup 'Microsoft.Network/privateEndpoints/privateDnsZoneGroups@2024-05-01' = if (!empty(privateDnsZoneId)) {
  parent: endpoint
  name: 'default'
  properties: {
    privateDnsZoneConfigs: [
      {
        name: groupId
        properties: {
          privateDnsZoneId: privateDnsZoneId
        }
      }
    ]
  }
}

output id string = endpoint.id
