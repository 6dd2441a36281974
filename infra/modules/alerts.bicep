// Log alert rules on the app's Application Insights traces, all sent to the operators' action group. They match
// the stable event names the app writes at the start of a log line (`VFXTDR_<EVENT> filer=<cluster>/<filer> ...`,
// docs/deploy.md "Alerts"). host.json keeps every trace out of sampling, so a line is never sampled away.
targetScope = 'resourceGroup'

@description('Base name of the app; the rules are named after it.')
param appName string

@description('Region of the rules: the DR region, next to Application Insights.')
param location string = resourceGroup().location

@description('Resource id of the Application Insights component the rules query (its `traces` table).')
param insightsId string

@description('Resource id of the action group (Microsoft.Insights/actionGroups) that receives every alert.')
param actionGroupId string

@description('How long without a VFXTDR_TICK line counts as the app being silent (the timer ticks every 5 minutes).')
@allowed([
  'PT15M'
  'PT30M'
  'PT1H'
])
param missingTickWindow string = 'PT15M'

@description('Tags applied to every resource created here.')
param tags object = {}

// Event alerts count the lines per filer (sum of itemCount, exact even if sampling were ever turned back on) and
// fire per filer; they are stateful (autoMitigate) so a repeated line keeps one alert open instead of many.
var eventAlerts = [
  {
    name: 'needs-attention'
    severity: 1
    title: 'vFXT DR: a filer needs attention'
    description: 'A run could not re-add a core filer it removed (VFXTDR_NEEDS_ATTENTION): clients cannot reach it. Fix the cluster, then POST /api/filers/{cluster}/{filer}/readd.'
    event: 'VFXTDR_NEEDS_ATTENTION'
  }
  {
    name: 'rpo-breach'
    severity: 2
    title: 'vFXT DR: RPO breached'
    description: 'The newest verified backup of a filer is older than the plan\'s RPO target (VFXTDR_RPO_BREACH, logged on every tick while it lasts).'
    event: 'VFXTDR_RPO_BREACH'
  }
  {
    name: 'drill-failed'
    severity: 2
    title: 'vFXT DR: a failover drill failed'
    description: 'A failover drill did not read back what the backup holds (VFXTDR_DRILL_FAILED): a real failover of that filer may fail too.'
    event: 'VFXTDR_DRILL_FAILED'
  }
]

// {0} is the event name. The event name starts the line; filer=<cluster>/<filer> follows it.
var eventQuery = '''
traces
| where message startswith_cs "{0}"
| extend filer = extract(@"filer=(\S+)", 1, message)
| summarize events = sum(itemCount) by filer
'''

resource eventRules 'Microsoft.Insights/scheduledQueryRules@2023-12-01' = [for alert in eventAlerts: {
  name: '${appName}-${alert.name}'
  location: location
  tags: tags
  kind: 'LogAlert'
  properties: {
    displayName: alert.title
    description: alert.description
    severity: alert.severity
    enabled: true
    scopes: [
      insightsId
    ]
    evaluationFrequency: 'PT5M'
    // wider than the frequency so ingestion delay cannot slip a line between two evaluations
    windowSize: 'PT15M'
    criteria: {
      allOf: [
        {
          query: format(eventQuery, alert.event)
          timeAggregation: 'Total'
          metricMeasureColumn: 'events'
          operator: 'GreaterThan'
          threshold: 0
          dimensions: [
            {
              name: 'filer'
              operator: 'Include'
              values: [
                '*'
              ]
            }
          ]
          failingPeriods: {
            numberOfEvaluationPeriods: 1
            minFailingPeriodsToAlert: 1
          }
        }
      ]
    }
    autoMitigate: true
    actions: {
      actionGroups: [
        actionGroupId
      ]
    }
  }
}]

// The app itself silent: no tick line in the window. count() over no rows is one row with 0, so the rule fires
// when nothing at all arrives (app stopped, host failing, timer not firing, telemetry broken).
resource missingTickRule 'Microsoft.Insights/scheduledQueryRules@2023-12-01' = {
  name: '${appName}-missing-tick'
  location: location
  tags: tags
  kind: 'LogAlert'
  properties: {
    displayName: 'vFXT DR: the app is silent (no tick)'
    description: 'No VFXTDR_TICK line: the timer has not run for the whole window, so no backup starts and no filer is reconciled.'
    severity: 1
    enabled: true
    scopes: [
      insightsId
    ]
    evaluationFrequency: 'PT5M'
    windowSize: missingTickWindow
    criteria: {
      allOf: [
        {
          query: '''
traces
| where message startswith_cs "VFXTDR_TICK"
| summarize ticks = count()
'''
          timeAggregation: 'Total'
          metricMeasureColumn: 'ticks'
          operator: 'LessThan'
          threshold: 1
          failingPeriods: {
            numberOfEvaluationPeriods: 1
            minFailingPeriodsToAlert: 1
          }
        }
      ]
    }
    autoMitigate: true
    actions: {
      actionGroups: [
        actionGroupId
      ]
    }
  }
}

output missingTickRuleId string = missingTickRule.id
