// The app's virtual network in the DR region, created when no existing subnet is passed to main.bicep: one subnet
// for Flex Consumption VNet integration (delegated to Microsoft.App/environments, /27 or larger, nothing else in
// it) and one for private endpoints. Peer it to the clusters' VNets so the app reaches their private management
// addresses (docs/deploy.md).
targetScope = 'resourceGroup'

@description('Name of the virtual network.')
param name string

@description('Region of the virtual network: the DR region, where the app runs.')
param location string = resourceGroup().location

@description('Address space of the virtual network. It must not overlap the clusters\' VNets it is peered with.')
param addressPrefix string = '10.80.0.0/24'

@description('Subnet for VNet integration. Flex Consumption needs /27 or larger, delegated to Microsoft.App/environments.')
param integrationSubnetPrefix string = '10.80.0.0/27'

@description('Subnet for the private endpoints of Key Vault and storage.')
param privateEndpointSubnetPrefix string = '10.80.0.32/27'

@description('Tags applied to every resource created here.')
param tags object = {}

// Subnet names: no underscores (Flex Consumption refuses them).
var integrationSubnetName = 'function-app'
var privateEndpointSubnetName = 'private-endpoints'

// The default rules (VNet to VNet, load balancer in, Internet out) are what the app needs; the NSGs exist so that
// operators can tighten them and so that flow logs have something to attach to.
resource integrationNsg 'Microsoft.Network/networkSecurityGroups@2024-05-01' = {
  name: '${name}-${integrationSubnetName}-nsg'
  location: location
  tags: tags
  properties: {
    securityRules: []
  }
}

resource privateEndpointNsg 'Microsoft.Network/networkSecurityGroups@2024-05-01' = {
  name: '${name}-${privateEndpointSubnetName}-nsg'
  location: location
  tags: tags
  properties: {
    securityRules: []
  }
}

resource vnet 'Microsoft.Network/virtualNetworks@2024-05-01' = {
  name: name
  location: location
  tags: tags
  properties: {
    addressSpace: {
      addressPrefixes: [
        addressPrefix
      ]
    }
    subnets: [
      {
        name: integrationSubnetName
        properties: {
          addressPrefix: integrationSubnetPrefix
          networkSecurityGroup: {
            id: integrationNsg.id
          }
          delegations: [
            {
              name: 'flex-consumption'
              properties: {
                serviceName: 'Microsoft.App/environments'
              }
            }
          ]
        }
      }
      {
        name: privateEndpointSubnetName
        properties: {
          addressPrefix: privateEndpointSubnetPrefix
          networkSecurityGroup: {
            id: privateEndpointNsg.id
          }
          // NSG rules apply to the private endpoints in this subnet as well
          privateEndpointNetworkPolicies: 'Enabled'
        }
      }
    ]
  }
}

output vnetId string = vnet.id
output integrationSubnetId string = resourceId('Microsoft.Network/virtualNetworks/subnets', vnet.name, integrationSubnetName)
output privateEndpointSubnetId string = resourceId('Microsoft.Network/virtualNetworks/subnets', vnet.name, privateEndpointSubnetName)
