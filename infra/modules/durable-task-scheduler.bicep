// The Durable Task Scheduler backend (chosen with durableBackend = 'DurableTaskScheduler' in main.bicep): a
// scheduler and the app's task hub in the DR region. Access is identity based (no connection secret); main.bicep
// assigns the data role to the app's identity on this task hub (the app's settings need this module's endpoint,
// so the role cannot be assigned here without a dependency cycle).
targetScope = 'resourceGroup'

@description('Name of the scheduler (3-64 letters, digits and hyphens).')
@minLength(3)
@maxLength(64)
param schedulerName string

@description('Name of the task hub: the same value as the VFXTDR_TASK_HUB app setting host.json reads.')
@minLength(3)
@maxLength(64)
param taskHubName string

@description('The DR region.')
param location string = resourceGroup().location

@description('Consumption (pay per use) or Dedicated (reserved capacity units).')
@allowed([
  'Consumption'
  'Dedicated'
])
param skuName string = 'Consumption'

@description('Addresses allowed to reach the scheduler endpoint (IPv4, IPv6 or CIDR). An empty list denies everything; every caller still needs an Entra ID role.')
param ipAllowlist array

@description('Tags applied to every resource created here.')
param tags object = {}

resource scheduler 'Microsoft.DurableTask/schedulers@2026-02-01' = {
  name: schedulerName
  location: location
  tags: tags
  properties: {
    sku: skuName == 'Dedicated' ? {
      name: skuName
      capacity: 1
    } : {
      name: skuName
    }
    ipAllowlist: ipAllowlist
  }
}

resource taskHub 'Microsoft.DurableTask/schedulers/taskHubs@2026-02-01' = {
  parent: scheduler
  name: taskHubName
}

output endpoint string = scheduler.properties.endpoint
output taskHubId string = taskHub.id
