// Log alert rules on the app's Application Insights traces, all sent to the operators' action group. They match
// the lines shared/runbook/signals.py writes: the message (what the Python logger formats; the Functions worker
// sends nothing else, so customDimensions holds no field of ours) is the stable event name, one space, one JSON
// object: `VFXTDR_RPO_BREACH {"filer":"primary/projects",...}` (docs/operations.md "Signals for alerts"). host.json
// keeps every trace out of sampling, so a line is never sampled away. tests/unit/infra/test_alert_queries.py runs
// these queries over lines the app's own formatter wrote.
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
// fire per filer; they are stateful (autoMitigate) so a repeated line keeps one alert open instead of many. Each
// query keeps the lines of its events (`startswith_cs` with the space after the name, so no name matches a longer
// one), parses the JSON after the first space and counts by its `filer` field (`cluster/name`).
var eventAlerts = [
  {
    name: 'needs-attention'
    severity: 1
    title: 'vFXT DR: a filer needs attention'
    description: 'A run could not re-add a core filer it removed (VFXTDR_NEEDS_ATTENTION, and every tick after it a VFXTDR_FILER_STATUS line in state needs_attention): clients cannot reach it. Fix the cluster, then POST /api/filers/{cluster}/{filer}/readd.'
    query: '''
traces
| where message startswith_cs "VFXTDR_NEEDS_ATTENTION " or message startswith_cs "VFXTDR_FILER_STATUS "
| extend f = parse_json(substring(message, indexof(message, " ") + 1))
| where message startswith_cs "VFXTDR_NEEDS_ATTENTION " or tostring(f.state) == "needs_attention"
| summarize events = sum(itemCount) by filer = tostring(f.filer)
'''
  }
  {
    name: 'rpo-breach'
    severity: 2
    title: 'vFXT DR: RPO breached'
    description: 'The newest verified backup of a filer is older than the plan\'s RPO target, or it has none once a run was tried (VFXTDR_RPO_BREACH, logged on every tick while it lasts).'
    query: '''
traces
| where message startswith_cs "VFXTDR_RPO_BREACH "
| extend f = parse_json(substring(message, indexof(message, " ") + 1))
| summarize events = sum(itemCount) by filer = tostring(f.filer)
'''
  }
  {
    name: 'drill-failed'
    severity: 2
    title: 'vFXT DR: a failover drill failed'
    description: 'A failover drill did not read back what the backup holds, or its clean-up failed (VFXTDR_DRILL_FAILED): a real failover of that filer may fail too.'
    query: '''
traces
| where message startswith_cs "VFXTDR_DRILL_FAILED "
| extend f = parse_json(substring(message, indexof(message, " ") + 1))
| summarize events = sum(itemCount) by filer = tostring(f.filer)
'''
  }
]

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
          query: alert.query
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
| where message startswith_cs "VFXTDR_TICK "
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
