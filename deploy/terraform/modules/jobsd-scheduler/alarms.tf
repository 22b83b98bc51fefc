# Alarms to SNS: the schedules' failures (per schedule group), the rules' permanently failed
# invocations (per rule), and anything waiting in either dead-letter queue. Metrics that are
# only published when non-zero treat missing data as "not breaching".

resource "aws_sns_topic" "alerts" {
  count = var.alarm_topic_arn == null ? 1 : 0

  name = "${var.name_prefix}-alerts"
  tags = var.tags
}

resource "aws_sns_topic_subscription" "email" {
  for_each = var.alarm_topic_arn == null ? toset(var.alarm_emails) : toset([])

  topic_arn = aws_sns_topic.alerts[0].arn
  protocol  = "email"
  endpoint  = each.value
}

locals {
  scheduler_alarms = var.enable_scheduler ? {
    target-errors = {
      metric      = "TargetErrorCount"
      description = "EventBridge Scheduler could not put a jobsd event on the bus (it retries; see the scheduler DLQ)."
    }
    dropped = {
      metric      = "InvocationDroppedCount"
      description = "EventBridge Scheduler gave up on a jobsd schedule invocation after its retry policy."
    }
    dlq-failed = {
      metric      = "InvocationsFailedToBeSentToDeadLetterCount"
      description = "EventBridge Scheduler could not write a failed jobsd invocation to its dead-letter queue."
    }
  } : {}

  rule_names = var.enable_scheduler ? merge(
    { rebuild = aws_cloudwatch_event_rule.rebuild[0].name },
    var.enable_sync_schedule ? { sync = aws_cloudwatch_event_rule.sync[0].name } : {},
    { for r in aws_cloudwatch_event_rule.rebuild_all : "rebuild-all-tenants" => r.name },
    { for r in aws_cloudwatch_event_rule.sync_all : "sync-all-tenants" => r.name },
  ) : {}

  dlq_names = var.enable_scheduler ? {
    scheduler = aws_sqs_queue.scheduler_dlq[0].name
    events    = aws_sqs_queue.events_dlq[0].name
  } : {}
}

resource "aws_cloudwatch_metric_alarm" "scheduler" {
  for_each = local.scheduler_alarms

  alarm_name          = "${var.name_prefix}-scheduler-${each.key}"
  alarm_description   = each.value.description
  namespace           = "AWS/Scheduler"
  metric_name         = each.value.metric
  dimensions          = { ScheduleGroup = aws_scheduler_schedule_group.jobs[0].name }
  statistic           = "Sum"
  period              = 300
  evaluation_periods  = 1
  threshold           = 1
  comparison_operator = "GreaterThanOrEqualToThreshold"
  treat_missing_data  = "notBreaching"
  alarm_actions       = [local.alarm_topic_arn]
  ok_actions          = [local.alarm_topic_arn]
  tags                = var.tags
}

resource "aws_cloudwatch_metric_alarm" "rule_failed_invocations" {
  for_each = local.rule_names

  alarm_name          = "${var.name_prefix}-rule-${each.key}-failed-invocations"
  alarm_description   = "EventBridge could not deliver a ${each.key} event to jobsd after its retries (or jobsd answered a non-retryable 4xx): the event is in ${var.name_prefix}-events-dlq."
  namespace           = "AWS/Events"
  metric_name         = "FailedInvocations"
  dimensions          = { EventBusName = aws_cloudwatch_event_bus.jobs[0].name, RuleName = each.value }
  statistic           = "Sum"
  period              = 300
  evaluation_periods  = 1
  threshold           = 1
  comparison_operator = "GreaterThanOrEqualToThreshold"
  treat_missing_data  = "notBreaching"
  alarm_actions       = [local.alarm_topic_arn]
  ok_actions          = [local.alarm_topic_arn]
  tags                = var.tags
}

resource "aws_cloudwatch_metric_alarm" "dlq_depth" {
  for_each = local.dlq_names

  alarm_name          = "${var.name_prefix}-${each.key}-dlq-not-empty"
  alarm_description   = "Failed jobsd events wait in ${each.value}: read them, fix the cause, replay (docs/operations.md)."
  namespace           = "AWS/SQS"
  metric_name         = "ApproximateNumberOfMessagesVisible"
  dimensions          = { QueueName = each.value }
  statistic           = "Maximum"
  period              = 300
  evaluation_periods  = 1
  threshold           = 1
  comparison_operator = "GreaterThanOrEqualToThreshold"
  treat_missing_data  = "notBreaching"
  alarm_actions       = [local.alarm_topic_arn]
  ok_actions          = [local.alarm_topic_arn]
  tags                = var.tags
}

# ------------------------------------------------------------------ freshness
# Every serving instance logs "[INTERNAL-JOB] freshness staleTenants=N ..." every
# FRESHNESS_CHECK_SECONDS, at level warn when N > 0 (some active tenant's last successful
# rebuild or sync is older than FRESHNESS_MAX_AGE_HOURS). The filter counts those warn lines;
# the alarm fires when they keep coming for freshness_alarm_periods quarter-hours, so one
# late night does not page while a silently stopped tenant does. No line at all (jobsd down)
# is not this alarm's business: the load balancer's health checks are.
resource "aws_cloudwatch_log_metric_filter" "freshness_stale" {
  count = var.log_group_name != null ? 1 : 0

  name           = "${var.name_prefix}-freshness-stale"
  log_group_name = var.log_group_name
  pattern        = "{ ($.msg = \"[INTERNAL-JOB] freshness\") && ($.level = \"warn\") }"

  metric_transformation {
    name      = "StaleFreshnessChecks"
    namespace = var.freshness_metric_namespace
    value     = "1"
    unit      = "Count"
  }
}

resource "aws_cloudwatch_metric_alarm" "freshness_stale" {
  count = var.log_group_name != null ? 1 : 0

  alarm_name          = "${var.name_prefix}-tenants-stale"
  alarm_description   = "jobsd reports active tenants whose data is not being refreshed (FRESHNESS_MAX_AGE_HOURS): GET /api/v1/jobs/freshness lists them; docs/operations.md, \"The freshness alarm\"."
  namespace           = var.freshness_metric_namespace
  metric_name         = aws_cloudwatch_log_metric_filter.freshness_stale[0].metric_transformation[0].name
  statistic           = "Sum"
  period              = 900
  evaluation_periods  = var.freshness_alarm_periods
  threshold           = 1
  comparison_operator = "GreaterThanOrEqualToThreshold"
  treat_missing_data  = "notBreaching"
  alarm_actions       = [local.alarm_topic_arn]
  ok_actions          = [local.alarm_topic_arn]
  tags                = var.tags
}
